"""OpenFoal runtime: protocol types, agent loop, model providers, tools and the agent kernel.

This package is the lower layer of OpenFoal. It never imports ``openfoal_server_ext``
and never opens the store.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
