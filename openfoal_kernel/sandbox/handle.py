"""The sandbox handle: what the gateway's manager hands the kernel's executor, and label names."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "LABEL_HOST",
    "LABEL_INSTANCE",
    "LABEL_OWNER",
    "LABEL_POOL",
    "LABEL_ROLE",
    "LABEL_SANDBOX",
    "LABEL_SESSION",
    "PROXY_PORT",
    "WORKDIR",
    "SandboxHandle",
]

#: Every container the sandbox creates carries this label ("1"): the filter for cleanup.
LABEL_SANDBOX = "openfoal.sandbox"
#: The server instance (one per process start) that created the container.
LABEL_INSTANCE = "openfoal.instance"
#: The host name of that server: orphan checks only judge containers of this host.
LABEL_HOST = "openfoal.host"
#: The user the container works for.
LABEL_OWNER = "openfoal.owner"
#: The session it was created for ("" for a pooled container; see the container name).
LABEL_SESSION = "openfoal.session"
#: "1" on containers created for the pool.
LABEL_POOL = "openfoal.pool"
#: "sandbox" or "egress-relay".
LABEL_ROLE = "openfoal.role"

#: Where the workspace is mounted inside the sandbox (and where commands start).
WORKDIR = "/workspace"
#: The egress relay listens on 127.0.0.1:PROXY_PORT inside the sandbox's network namespace.
PROXY_PORT = 3128


class SandboxHandle(BaseModel):
    """A session's sandbox container and how to reach it; crosses the gateway/kernel boundary."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    container_id: str
    """The Docker container id."""
    name: str
    """The container name (it carries the session once the container is taken from the pool)."""
    session_id: str
    """The session this sandbox belongs to."""
    owner: str
    """The user the sandbox works for."""
    image: str = ""
    """The image the container runs."""
    docker_host: str
    """Docker endpoint, as ``DOCKER_HOST`` spells it (``unix:///var/run/docker.sock``)."""
    api_version: str = "1.41"
    """Docker API version the manager negotiated."""
    user: str
    """``uid:gid`` every process in the sandbox runs as."""
    workdir: str = WORKDIR
    """The workspace inside the container."""
    host_workspace: str | None = None
    """The workspace on the host (absolute tool paths under it are accepted too)."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment for commands and Python (proxy variables, HOME)."""
    python: str | None = "python3"
    """The Python interpreter in the image, or ``None`` when the image has none."""
    budget_s: float | None = None
    """Seconds of sandbox exec time this session may use (``None``: no budget)."""
    ledger: str | None = None
    """Host path of the session's exec-time ledger (shared by manager and executors)."""
    relay_id: str | None = None
    """The egress relay container sharing the sandbox's network, when the policy opens hosts."""
    memory: str | None = None
    """The memory limit, for clearer out-of-memory messages."""
