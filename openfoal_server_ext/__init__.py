"""OpenFoal control plane: a Jupyter server extension hosting the gateway and the store."""

from __future__ import annotations

from typing import Any

from .app import OpenFoalApp

__all__ = ["OpenFoalApp"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "openfoal_server_ext", "app": OpenFoalApp}]
