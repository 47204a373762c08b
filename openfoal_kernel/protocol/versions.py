"""Protocol version negotiation: the server speaks its own minor version and the one before.

A client names the versions it speaks in ``connect.params.protocol {min, max}``: a major
number (``1``), ``major.minor`` or full semver. A bare ``min`` major means its first minor
version, a bare ``max`` major its last. The answer is the highest version the server speaks
within that range; ``connect`` without ``protocol`` gets the server's own version.
"""

from __future__ import annotations

import re
from typing import Final

from .errors import ErrorCode, OpenFoalError

__all__ = ["PROTOCOL_VERSION", "SUPPORTED_VERSIONS", "negotiate"]

#: The version this server speaks.
PROTOCOL_VERSION: Final = "1.1.0"
#: Every version it accepts, oldest first: its own minor version and the previous one.
SUPPORTED_VERSIONS: Final = ("1.0.0", "1.1.0")

_VERSION = re.compile(r"^\s*v?(\d{1,6})(?:\.(\d{1,6}))?(?:\.(\d{1,6}))?(?:[-+][\w.-]*)?\s*$")
_LAST: Final = 10**9


def _bound(value: str | int | None, *, upper: bool) -> tuple[int, int]:
    """``(major, minor)`` of one end of the client's range (``None``: open)."""
    if value is None:
        return (_LAST, _LAST) if upper else (0, 0)
    match = None if isinstance(value, bool) else _VERSION.match(str(value))
    if match is None:
        raise OpenFoalError(
            ErrorCode.INVALID_REQUEST,
            f"protocol.min/max must be versions like 1 or 1.0, not {value!r} "
            "(this server speaks protocol 1.x)",
        )
    major, minor = int(match.group(1)), match.group(2)
    if minor is None:
        return major, _LAST if upper else 0
    return major, int(minor)


def _key(version: str) -> tuple[int, int]:
    major, minor, _ = version.split(".")
    return int(major), int(minor)


def negotiate(low: str | int | None = None, high: str | int | None = None) -> str:
    """The version to speak with a client that speaks ``low..high``; ``INVALID_REQUEST``
    when no version the server speaks lies in that range."""
    lo, hi = _bound(low, upper=False), _bound(high, upper=True)
    fits = [v for v in SUPPORTED_VERSIONS if lo <= _key(v) <= hi]
    if not fits:
        raise OpenFoalError(
            ErrorCode.INVALID_REQUEST,
            f"this server speaks protocol 1.x, {SUPPORTED_VERSIONS[0]} to {PROTOCOL_VERSION}; "
            f"the client asked for {low}..{high}",
        )
    return fits[-1]
