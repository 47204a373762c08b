"""The address guard of ``http.request``: which URLs may be fetched, decided after DNS resolution.

A URL is checked in three steps: its shape (http or https, a host, no odd encodings left
undecoded), the name (cloud metadata names are always refused), then every address the name
resolves to. Loopback, private, carrier-grade NAT, link-local, unique-local, multicast, reserved,
unspecified and metadata addresses are refused, including IPv4 addresses embedded in IPv6
(mapped, 6to4, NAT64, Teredo). The caller then connects to the checked address itself, so the
name is never resolved a second time (no DNS rebinding between check and use).

``policy.network.allow`` opens a host: ``api.example.com`` (any port), ``*.example.org`` (its
subdomains, not the bare name), ``host:port`` or ``127.0.0.1:8080`` (that port only). An allowed
host may resolve to a private address; cloud metadata addresses stay refused even then.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

import httpx

from ..protocol.errors import ErrorCode, OpenFoalError

__all__ = [
    "IPAddress",
    "NetworkRefused",
    "Resolver",
    "Target",
    "blocked_reason",
    "check_url",
    "host_allowed",
    "parse_url",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``(host, port) -> addresses``; injectable so tests can stand in for DNS.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

_SCHEMES = {"http": 80, "https": 443}
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "metadata.azure.com"}
)
METADATA_IPS = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
#: Named ranges, checked first so the refusal says what the address is.
_RANGES: tuple[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network], ...] = tuple(
    (label, ipaddress.ip_network(net))
    for label, net in (
        ("unspecified", "0.0.0.0/8"),
        ("loopback", "127.0.0.0/8"),
        ("private", "10.0.0.0/8"),
        ("private", "172.16.0.0/12"),
        ("private", "192.168.0.0/16"),
        ("carrier-grade NAT", "100.64.0.0/10"),
        ("link-local", "169.254.0.0/16"),
        ("multicast", "224.0.0.0/4"),
        ("reserved", "240.0.0.0/4"),
        ("unspecified", "::/128"),
        ("loopback", "::1/128"),
        ("link-local", "fe80::/10"),
        ("unique-local", "fc00::/7"),
        ("multicast", "ff00::/8"),
    )
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_LEGACY_V4 = re.compile(r"^(0x[0-9a-f]*|\d+)(\.(0x[0-9a-f]*|\d+)){0,3}$")
_HOSTNAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")


class NetworkRefused(OpenFoalError):
    """A URL the guard refuses for its address (code ``POLICY_DENIED``)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.POLICY_DENIED, message)


@dataclass(frozen=True)
class Target:
    """A checked URL and the one address to connect to."""

    url: httpx.URL  # as the caller wrote it (normalised), used for Host, SNI and redirects
    host: str  # canonical host: lower case, ASCII, no trailing dot, IPv4 in dotted quad
    port: int
    address: IPAddress
    allowlisted: bool

    def connect_url(self) -> httpx.URL:
        """The URL with the checked address in place of the name."""
        return self.url.copy_with(host=str(self.address))

    def host_header(self) -> str:
        """The ``Host`` header value for this URL."""
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = _SCHEMES[self.url.scheme]
        return name if self.port == default else f"{name}:{self.port}"


def parse_url(url: str) -> tuple[httpx.URL, str, int]:
    """Parse and normalise a URL; return it with its canonical host and port."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"invalid URL {url!r}: {exc}") from exc
    if parsed.scheme not in _SCHEMES:
        raise OpenFoalError(
            ErrorCode.INVALID_REQUEST,
            f"scheme {parsed.scheme or '(none)'!r} refused: only http and https are allowed",
        )
    raw = parsed.raw_host.decode("ascii", "replace")
    if not raw:
        raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"invalid URL {url!r}: no host")
    host = canonical_host(raw)
    if host != raw:
        parsed = parsed.copy_with(host=host)
    return parsed, host, parsed.port or _SCHEMES[parsed.scheme]


def canonical_host(raw: str) -> str:
    """Lower-case, percent-decode and strip a host; write any IPv4 form as a dotted quad."""
    host = unquote(raw).strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if _LEGACY_V4.match(host):
        # Decimal, hex, octal and short forms (2130706433, 0x7f000001, 0177.1, 127.1).
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            pass
    if not _HOSTNAME.match(host):
        raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"invalid host {raw!r}")
    return host


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be reached (e.g. ``"loopback address"``), or ``None``."""
    if address in METADATA_IPS:
        return "cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None:
            inner = blocked_reason(embedded)
            return f"{inner} (IPv4 {embedded} embedded in IPv6)" if inner else None
    for label, net in _RANGES:
        if address.version == net.version and address in net:
            return f"{label} address"
    if address.is_multicast:
        return "multicast address"
    if address.is_reserved or address.is_unspecified:
        return "reserved address"
    if not address.is_global or address.is_private:
        return "address that is not globally routable"
    return None


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def host_allowed(host: str, port: int, patterns: Sequence[str]) -> bool:
    """Whether ``host:port`` matches one of the allowlist patterns."""
    for pattern in patterns:
        p_host, p_port = _split_pattern(pattern)
        if p_port is not None and p_port != port:
            continue
        if p_host.startswith("*."):
            if host.endswith(p_host[1:]) and len(host) > len(p_host) - 1:
                return True
        elif p_host == host:
            return True
    return False


def _split_pattern(pattern: str) -> tuple[str, int | None]:
    text = pattern.strip().lower()
    port: int | None = None
    m = re.match(r"^(\[[^\]]+\]|[^:]+):(\d+)$", text)
    if m:
        text, port = m.group(1), int(m.group(2))
    if text.startswith("*."):
        return text, port
    try:
        return canonical_host(text), port
    except OpenFoalError:
        return text, port  # an odd pattern matches nothing canonical


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Resolve with the system resolver (``getaddrinfo``), TCP addresses only."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OpenFoalError(ErrorCode.TOOL_EXEC_FAILED, f"cannot resolve {host!r}: {exc}") from exc
    out: list[IPAddress] = []
    for *_, sockaddr in infos:
        addr = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if addr not in out:
            out.append(addr)
    return out


async def check_url(
    url: str | httpx.URL, allow: Sequence[str], *, resolver: Resolver = system_resolver
) -> Target:
    """Check ``url`` against the guard and return the address to connect to."""
    parsed, host, port = parse_url(str(url))
    if host in METADATA_HOSTS or host.endswith(".metadata.google.internal"):
        raise NetworkRefused(f"{host} refused: cloud metadata host")
    allowlisted = host_allowed(host, port, allow)
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = await resolver(host, port)
    if not addresses:
        raise OpenFoalError(ErrorCode.TOOL_EXEC_FAILED, f"{host!r} resolved to no address")
    hp = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    for address in addresses:
        reason = blocked_reason(address)
        metadata = reason is not None and reason.startswith("cloud metadata")
        if reason is None or (allowlisted and not metadata):
            continue
        where = "" if str(address) == host else f"resolves to {address}, "
        hint = "" if metadata else f" (add '{hp}' to network.allow to open it)"
        raise NetworkRefused(f"{hp} refused: {where}{reason}{hint}")
    return Target(url=parsed, host=host, port=port, address=addresses[0], allowlisted=allowlisted)
