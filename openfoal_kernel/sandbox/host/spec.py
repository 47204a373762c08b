"""The hardened container definitions: the sandbox and its egress relay, names and labels."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from ..handle import (
    LABEL_HOST,
    LABEL_INSTANCE,
    LABEL_OWNER,
    LABEL_POOL,
    LABEL_ROLE,
    LABEL_SANDBOX,
    LABEL_SESSION,
    PROXY_PORT,
    WORKDIR,
)
from ..inside import source
from .mounts import SANDBOX_UID

__all__ = ["PROXY_ENV", "container_name", "labels", "relay_kwargs", "sandbox_kwargs"]

RELAY_SOURCE = source("relay")
#: Inside the relay container: the folder holding the proxy's socket.
RELAY_DIR = "/run/openfoal-egress"
PROXY_URL = f"http://127.0.0.1:{PROXY_PORT}"
#: Every process in the sandbox is pointed at the relay (which refuses what the policy does).
PROXY_ENV = {
    "HTTP_PROXY": PROXY_URL,
    "HTTPS_PROXY": PROXY_URL,
    "http_proxy": PROXY_URL,
    "https_proxy": PROXY_URL,
    "NO_PROXY": "",
    "no_proxy": "",
    "HOME": "/tmp",
}


def labels(
    *,
    instance: str,
    host: str,
    owner: str,
    session: str,
    pool: bool,
    role: str,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The labels of one container."""
    out = dict(extra or {})
    out.update(
        {
            LABEL_SANDBOX: "1",
            LABEL_INSTANCE: instance,
            LABEL_HOST: host,
            LABEL_OWNER: owner,
            LABEL_SESSION: session,
            LABEL_POOL: "1" if pool else "0",
            LABEL_ROLE: role,
        }
    )
    return out


def container_name(instance: str, session: str | None) -> str:
    """``openfoal-<instance>-<session or pool>-<random>``, in Docker's name alphabet."""
    if session is None:
        part = "pool"
    else:
        slug = re.sub(r"[^a-zA-Z0-9_.-]+", "-", session).strip("-.")[:40]
        digest = hashlib.sha256(session.encode()).hexdigest()[:8]
        part = f"{slug}-{digest}" if slug else digest
    return f"openfoal-{instance[:8]}-{part}-{secrets.token_hex(3)}"


def sandbox_kwargs(
    *,
    image: str,
    name: str,
    user: str,
    workspace_source: str,
    memory: str,
    cpus: float,
    pids: int,
    tmpfs_size: str,
    container_labels: dict[str, str],
) -> dict[str, Any]:
    """``containers.run`` arguments of a hardened sandbox."""
    return {
        "image": image,
        "command": ["sleep", "infinity"],
        "name": name,
        "detach": True,
        "init": True,  # an init as pid 1 reaps the orphans of killed commands
        "user": user,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={tmpfs_size},mode=1777"},
        "network_mode": "none",
        "mem_limit": memory,
        "memswap_limit": memory,  # no swap: the limit is the limit
        "nano_cpus": int(cpus * 1e9),
        "pids_limit": pids,
        "shm_size": "16m",
        "volumes": {workspace_source: {"bind": WORKDIR, "mode": "rw"}},
        "working_dir": WORKDIR,
        "environment": {"HOME": "/tmp"},
        "hostname": "sandbox",
        "labels": container_labels,
        "log_config": {"type": "none"},
    }


def relay_kwargs(
    *,
    image: str,
    name: str,
    sandbox_id: str,
    socket_dir: str,
    container_labels: dict[str, str],
    python: str = "python3",
) -> dict[str, Any]:
    """``containers.run`` arguments of the egress relay of sandbox ``sandbox_id``."""
    return {
        "image": image,
        "command": [python, "-u", "-c", RELAY_SOURCE, f"{RELAY_DIR}/proxy.sock", str(PROXY_PORT)],
        "name": name,
        "detach": True,
        "init": True,
        "user": f"{SANDBOX_UID}:{SANDBOX_UID}",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "network_mode": f"container:{sandbox_id}",
        "mem_limit": "64m",
        "memswap_limit": "64m",
        "nano_cpus": int(0.5e9),
        "pids_limit": 16,
        "volumes": {socket_dir: {"bind": RELAY_DIR, "mode": "ro"}},
        "labels": container_labels,
    }
