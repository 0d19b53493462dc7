"""Training entry points; each module is runnable with ``python -m training.<name>``."""

import styletransfer  # noqa: F401  (before torch: it sets how long OpenMP threads spin, see styletransfer/cpu.py)
