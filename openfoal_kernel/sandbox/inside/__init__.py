"""Scripts that run inside the sandbox containers (stdlib only); the host sends their source.

Only this ``__init__`` is imported on the host, to read a script's text; the scripts themselves
run as ``python -c SOURCE`` in the container and import nothing from the project.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["source"]


def source(script: str) -> str:
    """The source text of the script ``script`` of this folder (``"repl_server"``, ``"relay"``)."""
    return Path(__file__).with_name(f"{script}.py").read_text("utf-8")
