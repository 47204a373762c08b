"""Kernel ports chosen below the machine's ephemeral range.

Jupyter picks a local kernel's five ports by binding port 0 and closing the socket; the kernel
binds them a second or two later. Outgoing connections take their local port from that same
ephemeral range, and a server holds many (the gateway's channels to every kernel, each agent
kernel's to its code kernel). With dozens of kernels starting, one of those connections can
take a chosen port first: the kernel dies with ``Address already in use``, and Jupyter's
restarter starts it again on the same cached ports, five times, until it gives up
(jupyter_client issue 487). Ports below the ephemeral range are never handed to outgoing
connections, so the only other takers are listeners, which the bind test sees.

:func:`install` swaps Jupyter's process-wide port cache for :class:`KernelPortCache` before the
first kernel starts; every locally provisioned kernel of the server (agent, code and notebook
kernels) then takes its ports from it. ``c.KernelOrchestrator.kernel_ports`` sets the range.
"""

from __future__ import annotations

import logging
import random
import socket
from pathlib import Path

from jupyter_client.provisioning.local_provisioner import LocalPortCache

log = logging.getLogger(__name__)

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: How many ports below the ephemeral range ``auto`` uses (never below 10000).
AUTO_SPAN = 12_000
AUTO_FLOOR = 10_000
#: Random picks tried before falling back to the operating system's choice.
ATTEMPTS = 64


def parse_range(spec: str, ephemeral: Path = EPHEMERAL_RANGE) -> tuple[int, int] | None:
    """``auto``, ``os`` or ``LOW-HIGH`` (high exclusive); None: let the OS choose (``os``, or
    ``auto`` where the ephemeral range is unknown or leaves no room below it)."""
    spec = spec.strip().lower()
    if spec == "os":
        return None
    if spec == "auto":
        try:
            low = int(ephemeral.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        start = max(AUTO_FLOOR, low - AUTO_SPAN)
        return (start, low) if low - start >= 1_000 else None
    try:
        low_s, high_s = spec.split("-")
        low, high = int(low_s), int(high_s)
    except ValueError:
        raise ValueError(f"kernel_ports: {spec!r} is not 'auto', 'os' or 'LOW-HIGH'") from None
    if not 1024 <= low < high <= 65536 or high - low < 10:
        raise ValueError(f"kernel_ports: {spec!r} needs 1024 <= LOW < HIGH <= 65536, 10 wide")
    return low, high


def port_free(ip: str, port: int) -> bool:
    """Whether ``ip:port`` can be bound now (a listener or a connection's local end: no)."""
    with socket.socket() as sock:
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


class KernelPortCache(LocalPortCache):
    """Jupyter's port cache (no two kernels of this process share a port), drawing from
    ``[low, high)``; outside it, or once the range seems full, the OS chooses as before."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.port_range: tuple[int, int] | None = None

    def find_available_port(self, ip: str) -> int:
        if self.port_range is not None:
            low, high = self.port_range
            for _ in range(ATTEMPTS):
                port = random.randrange(low, high)
                if port not in self.currently_used_ports and port_free(ip, port):
                    self.currently_used_ports.add(port)
                    return port
            log.warning("no free kernel port in %d-%d: the OS chooses one", low, high)
        return super().find_available_port(ip)


def install(spec: str) -> tuple[int, int] | None:
    """Make :class:`KernelPortCache` Jupyter's port cache, drawing from ``spec``'s range;
    return the range (None: the OS chooses). Call before the first kernel starts."""
    port_range = parse_range(spec)
    if LocalPortCache.initialized() and not isinstance(LocalPortCache.instance(), KernelPortCache):
        log.warning("kernel ports: Jupyter's port cache is in use already; left as it is")
        return None
    cache = KernelPortCache.instance()
    cache.port_range = port_range
    return port_range
