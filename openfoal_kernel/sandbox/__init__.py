"""The cloud sandbox: tools in a hardened per-session Docker container (all Docker use is here).

Grouped by the process each module runs in:

- :mod:`.host`: the server's side (the gateway): container lifecycle, pool, caps, mounts,
  container specs, the egress proxy;
- :mod:`.client`: the agent kernel's side: the ``DockerExecutor`` that runs tools in the
  container, its exec streams and the Python REPL client;
- :mod:`.inside`: scripts that run inside the containers with the stdlib only (the REPL
  server, the egress relay), shipped there as source text;
- here: what both host and client use: the sandbox handle and its labels
  (:mod:`.handle`), the Docker API helpers (:mod:`.docker_api`), the time ledger
  (:mod:`.budget`).
"""

from __future__ import annotations

from .handle import SandboxHandle

__all__ = ["SandboxHandle"]
