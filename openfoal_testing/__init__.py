"""Test support for OpenFoal: pytest fixtures and helpers for the test suites and benchmarks.

Not part of the wheel (only ``openfoal_kernel`` and ``openfoal_server_ext`` ship), so the
product never imports pytest. Enable the fixtures with
``pytest_plugins = ["openfoal_testing.plugin", "openfoal_testing.cloud"]``.
"""
