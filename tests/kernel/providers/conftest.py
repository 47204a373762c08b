"""Fixtures for the provider tests: a scripted model server and the tools offered to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openfoal_kernel.providers import ToolSpec
from openfoal_kernel.scripted import ScriptedModelServer

API_KEY = "sk-test-key"


@pytest.fixture
def server() -> Iterator[ScriptedModelServer]:
    """A scripted server that insists on :data:`API_KEY`."""
    with ScriptedModelServer(api_key=API_KEY) as running:
        yield running


@pytest.fixture
def tools() -> list[ToolSpec]:
    """Three tools with dotted wire names."""
    schema = {"type": "object", "properties": {"x": {"type": "string"}}}
    return [
        ToolSpec(name="bash.exec", description="Run a shell command.", parameters=schema),
        ToolSpec(name="file.list", description="List a directory.", parameters=schema),
        ToolSpec(name="python.exec", description="Run Python code.", parameters=schema),
    ]
