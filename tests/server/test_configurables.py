"""The swappable parts take their settings from their own config sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from traitlets.config import Config

from openfoal_kernel.sandbox.host.manager import SandboxManager
from openfoal_server_ext.app import OpenFoalApp
from openfoal_server_ext.kernels.orchestrator import KernelOrchestrator


class TaggedSandboxManager(SandboxManager):
    """A custom manager chosen through ``c.OpenFoalApp.sandbox_manager_class``."""


class TaggedOrchestrator(KernelOrchestrator):
    """A custom orchestrator chosen through ``c.OpenFoalApp.kernel_orchestrator_class``."""


async def _ignore(*args: Any) -> None:
    return None


def _app(config: Config) -> OpenFoalApp:
    return OpenFoalApp(config=config, server_owner="tester")


def test_sandbox_manager_section_reaches_the_built_manager(tmp_path: Path) -> None:
    """``c.SandboxManager.*`` set through a Config is what the built manager uses."""
    config = Config()
    config.SandboxManager.image = "x"
    config.SandboxManager.idle_ttl = 12.5
    config.SandboxManager.max_live = 3
    config.SandboxManager.budget = 0.0
    config.SandboxManager.state_dir = str(tmp_path / "state")
    manager = _app(config).build_sandbox_manager(tmp_path, on_egress=None)
    assert type(manager) is SandboxManager
    assert (manager.image, manager.idle_ttl, manager.max_live) == ("x", 12.5, 3)
    assert manager.budget_s is None  # 0 means no budget
    assert manager.state_path == tmp_path / "state"
    assert manager.owner_label == "tester"
    assert manager.pool_workspace == str(tmp_path.resolve())


def test_kernel_orchestrator_section_reaches_the_built_orchestrator() -> None:
    """``c.KernelOrchestrator.*`` set through a Config is what the built orchestrator uses."""
    config = Config()
    config.KernelOrchestrator.idle_timeout = 42.0
    config.KernelOrchestrator.pool_size = 3
    kernel_manager = AsyncMappingKernelManager()
    kernels = _app(config).build_kernel_orchestrator(kernel_manager, _ignore, _ignore)
    assert type(kernels) is KernelOrchestrator
    assert (kernels.idle_timeout, kernels.pool_size) == (42.0, 3)
    assert kernels.mkm is kernel_manager


def test_custom_subclasses_chosen_by_type_traits_are_built(tmp_path: Path) -> None:
    """The Type traits pick the classes; the subclass still reads its parent's section."""
    config = Config()
    config.OpenFoalApp.sandbox_manager_class = TaggedSandboxManager
    config.OpenFoalApp.kernel_orchestrator_class = (
        f"{TaggedOrchestrator.__module__}.{TaggedOrchestrator.__qualname__}"
    )
    config.SandboxManager.image = "x"
    config.KernelOrchestrator.pool_size = 0
    app = _app(config)
    manager = app.build_sandbox_manager(tmp_path, on_egress=None)
    kernels = app.build_kernel_orchestrator(AsyncMappingKernelManager(), _ignore, _ignore)
    assert type(manager) is TaggedSandboxManager and manager.image == "x"
    assert type(kernels) is TaggedOrchestrator and kernels.pool_size == 0


def test_unknown_setting_of_a_part_is_a_clear_error(tmp_path: Path) -> None:
    """A keyword that is no trait of the part fails at once, naming it."""
    with pytest.raises(TypeError, match="SandboxManager has no setting idle_ttl_s"):
        SandboxManager(state_dir=tmp_path, idle_ttl_s=1.0)
    with pytest.raises(TypeError, match="KernelOrchestrator has no setting idle_timeout_s"):
        KernelOrchestrator(None, on_event=_ignore, on_lost=_ignore, idle_timeout_s=1.0)
