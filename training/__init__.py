"""Training entry points; each module is runnable with ``python -m training.<name>``."""
