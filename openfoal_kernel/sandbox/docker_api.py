"""Where the Docker SDK is reached: clients with short timeouts, blocking calls in a thread.

Every SDK call blocks, so it runs through :func:`blocking` (``asyncio.to_thread``); a
connection that fails (no engine, a socket path that does not exist, a daemon that does not
answer within the timeout) becomes ``SANDBOX_UNAVAILABLE`` at once, never a hang.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import docker
import docker.errors
import requests

from ..protocol.errors import ErrorCode, OpenFoalError

__all__ = [
    "DEFAULT_DOCKER_HOST",
    "Endpoint",
    "blocking",
    "connect",
    "endpoint_of",
    "unavailable",
]

T = TypeVar("T")

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
#: Seconds a probe (``/_ping``) may take before the engine counts as unavailable.
PING_TIMEOUT_S = 3.0
#: Seconds any other API call may take (container create and start included).
CALL_TIMEOUT_S = 30.0


def unavailable(message: str) -> OpenFoalError:
    """A ``SANDBOX_UNAVAILABLE`` error (retryable) with ``message``."""
    return OpenFoalError(ErrorCode.SANDBOX_UNAVAILABLE, message)


def _connection_failure(exc: BaseException) -> bool:
    """Whether ``exc`` means the engine could not be reached (rather than refused a request)."""
    if isinstance(exc, docker.errors.APIError):
        return False
    return isinstance(
        exc, (docker.errors.DockerException, requests.exceptions.RequestException, OSError)
    )


async def blocking(fn: Callable[..., T], *args: Any, what: str, **kwargs: Any) -> T:
    """Run the blocking SDK call ``fn`` in a thread; unreachable engine -> SANDBOX_UNAVAILABLE."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except Exception as exc:
        if _connection_failure(exc):
            raise unavailable(f"Docker is unavailable ({what}): {_short(exc)}") from exc
        raise


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def connect(
    docker_host: str | None = None,
    *,
    timeout_s: float = CALL_TIMEOUT_S,
    api_version: str | None = None,
) -> docker.DockerClient:
    """A client for ``docker_host`` (default: ``DOCKER_HOST`` or the local socket), probed.

    Blocking: call it through :func:`blocking`. Raises ``SANDBOX_UNAVAILABLE`` when the engine
    does not answer a ping within a few seconds. With ``api_version`` (negotiated before, as
    a sandbox handle carries it) there is no probe: the first call finds the engine.
    """
    host = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    if api_version:
        return docker.DockerClient(base_url=host, version=api_version, timeout=timeout_s)
    try:
        # The probe negotiates the API version under a short timeout; the working client then
        # gets the longer one (creating a container can take a while on a busy disk).
        probe = docker.DockerClient(base_url=host, version="auto", timeout=PING_TIMEOUT_S)
        version = probe.api.api_version
        probe.close()
        return docker.DockerClient(base_url=host, version=version, timeout=timeout_s)
    except Exception as exc:
        if _connection_failure(exc):
            raise unavailable(f"Docker is unavailable at {host}: {_short(exc)}") from exc
        raise


@dataclass(frozen=True)
class Endpoint:
    """How to open a raw connection to the engine (for attached exec streams)."""

    docker_host: str
    api_version: str

    @property
    def unix_path(self) -> str | None:
        """The socket path of a ``unix://`` endpoint, else ``None``."""
        if self.docker_host.startswith("unix://"):
            return "/" + self.docker_host[len("unix://") :].lstrip("/")
        return None

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of a plain ``tcp://`` or ``http://`` endpoint, else ``None``."""
        for prefix in ("tcp://", "http://"):
            if self.docker_host.startswith(prefix):
                rest = self.docker_host[len(prefix) :].rstrip("/")
                host, _, port = rest.rpartition(":")
                return (host or rest, int(port) if port.isdigit() else 2375)
        return None


def endpoint_of(client: docker.DockerClient) -> Endpoint:
    """The endpoint ``client`` speaks to, as a ``DOCKER_HOST`` string and API version."""
    api = client.api
    adapter = getattr(api, "_custom_adapter", None)
    socket_path = getattr(adapter, "socket_path", None)
    if socket_path:
        host = f"unix://{socket_path}"
    else:
        host = str(api.base_url).replace("https://", "tcp://").replace("http://", "tcp://")
    return Endpoint(docker_host=host, api_version=str(api.api_version))
