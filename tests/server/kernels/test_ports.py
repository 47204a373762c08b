"""Kernel ports below the ephemeral range (kernels/ports.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.provisioning.local_provisioner import LocalPortCache
from traitlets import TraitError

from openfoal_server_ext.kernels import ports
from openfoal_server_ext.kernels.orchestrator import KernelOrchestrator
from openfoal_server_ext.kernels.ports import KernelPortCache, parse_range, port_free


async def _ignore(*args: Any) -> None:
    return None


def _ephemeral(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ip_local_port_range"
    path.write_text(text)
    return path


def test_auto_is_the_ports_below_the_ephemeral_range(tmp_path: Path) -> None:
    assert parse_range("auto", _ephemeral(tmp_path, "32768\t60999\n")) == (20768, 32768)
    assert parse_range("AUTO", _ephemeral(tmp_path, "49152 65535")) == (37152, 49152)
    # no room below it, or no such file: the OS chooses, as Jupyter does
    assert parse_range("auto", _ephemeral(tmp_path, "1024 65535")) is None
    assert parse_range("auto", tmp_path / "missing") is None
    assert parse_range("auto", _ephemeral(tmp_path, "garbage")) is None


def test_explicit_ranges_and_os() -> None:
    assert parse_range("os") is None
    assert parse_range(" 23000-23100 ") == (23000, 23100)
    for bad in ("23000", "a-b", "100-200", "30000-30005", "40000-30000", "60000-70000"):
        with pytest.raises(ValueError, match="kernel_ports"):
            parse_range(bad)


def test_the_orchestrator_refuses_a_bad_range_when_configured() -> None:
    with pytest.raises(TraitError, match="kernel_ports"):
        KernelOrchestrator(None, on_event=_ignore, on_lost=_ignore, kernel_ports="1-2")
    ok = KernelOrchestrator(None, on_event=_ignore, on_lost=_ignore, kernel_ports="23000-23100")
    assert ok.kernel_ports == "23000-23100"


@pytest.fixture
def cache() -> Iterator[KernelPortCache]:
    """A cache of the test's own (the process-wide one is left as it was)."""
    yield KernelPortCache()


def test_ports_are_drawn_from_the_range_and_never_shared(cache: KernelPortCache) -> None:
    cache.port_range = (23000, 23060)
    got = [cache.find_available_port("127.0.0.1") for _ in range(40)]
    assert all(23000 <= p < 23060 for p in got), got
    assert len(set(got)) == len(got)
    cache.return_port(got[0])
    assert got[0] not in cache.currently_used_ports


def test_a_port_someone_holds_is_skipped_and_a_full_range_falls_back(
    cache: KernelPortCache,
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert not port_free("127.0.0.1", port)
        cache.port_range = (port, port + 1)  # the only port in range is taken
        other = cache.find_available_port("127.0.0.1")
        assert other != port
        assert port_free("127.0.0.1", other)


def test_install_makes_it_jupyters_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LocalPortCache, "_instance", None)
    monkeypatch.setattr(KernelPortCache, "_instance", None)
    assert ports.install("23000-23100") == (23000, 23100)
    # what the local provisioner asks for is the OpenFoal cache, drawing from the range
    cache = LocalPortCache.instance()
    assert isinstance(cache, KernelPortCache)
    assert 23000 <= cache.find_available_port("127.0.0.1") < 23100
    assert ports.install("os") is None
    assert cache.port_range is None


def test_install_leaves_a_cache_already_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LocalPortCache, "_instance", None)
    monkeypatch.setattr(KernelPortCache, "_instance", None)
    plain = LocalPortCache.instance()
    assert ports.install("23000-23100") is None
    assert LocalPortCache.instance() is plain
