"""Test configuration: OpenFoal's fixtures."""

from __future__ import annotations

pytest_plugins = ["openfoal_testing.plugin", "openfoal_testing.cloud", "openfoal_testing.hub"]
