"""The cloud sandbox: tools in a hardened per-session Docker container (all Docker use is here).

- :mod:`.manager`: the gateway's side: container lifecycle, pool, caps, budgets, orphans;
- :mod:`.executor`: the kernel's side: the ``Executor`` that runs tools in the container;
- :mod:`.egress`: the proxy that lets allowlisted hosts, and nothing else, out.
"""

from __future__ import annotations

from .handle import SandboxHandle

__all__ = ["SandboxHandle"]
