"""Model cards written next to weights pushed to the Hub."""

from __future__ import annotations

from .manifest import ModelSpec

__all__ = ["model_card"]


def model_card(spec: ModelSpec) -> str:
    """A README.md for ``spec``'s Hub repo: licence and source in the YAML header and the body."""
    return f"""---
license: {spec.license}
library_name: styletransfer
tags:
- style-transfer
- {spec.method}
---
# {spec.name}

{spec.description}

- **Kind:** {spec.kind}
- **File:** `{spec.filename}` (safetensors)
- **Expected input:** {spec.preprocessing}
- **Source:** {spec.source_url}
- **Paper:** {spec.paper}
- **Licence:** {spec.license}
"""
