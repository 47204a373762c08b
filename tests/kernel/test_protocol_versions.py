"""Protocol version negotiation: the server's minor version and the one before it."""

from __future__ import annotations

import pytest

from openfoal_kernel.protocol import PROTOCOL_VERSION, OpenFoalError
from openfoal_kernel.protocol.versions import negotiate


def test_the_server_speaks_1_1() -> None:
    assert PROTOCOL_VERSION == "1.1.0"


@pytest.mark.parametrize(
    "low,high,expected",
    [
        (None, None, "1.1.0"),
        ("1", "1", "1.1.0"),
        (1, 1, "1.1.0"),
        ("1.0", "1.0", "1.0.0"),
        ("1.0.0", "1.0.7", "1.0.0"),
        ("1.0", "1.1", "1.1.0"),
        ("0.9", "1.0", "1.0.0"),
        ("1.1.0", "2.0.0", "1.1.0"),
        ("1.0.0-rc.1", "1.5", "1.1.0"),
        ("1", "9", "1.1.0"),
    ],
)
def test_negotiated_version(low, high, expected) -> None:
    assert negotiate(low, high) == expected


@pytest.mark.parametrize(
    "low,high",
    [("2", "3"), ("1.2", "1.9"), ("0.1", "0.9"), ("1.1", "1.0"), ("x", "1"), (True, 1), ("1", "")],
)
def test_a_range_without_a_spoken_version_is_invalid(low, high) -> None:
    with pytest.raises(OpenFoalError) as refused:
        negotiate(low, high)
    assert refused.value.code == "INVALID_REQUEST" and "1.x" in str(refused.value)
