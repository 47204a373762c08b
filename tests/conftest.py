"""Test configuration: OpenFoal's fixtures."""

from __future__ import annotations

pytest_plugins = ["openfoal_server_ext.pytest_plugin", "openfoal_server_ext.pytest_cloud"]
