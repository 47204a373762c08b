"""WebSocket text frames encoded in bulk, so a backlog of events leaves in one socket write.

Tornado's ``write_message`` costs a task, a future and a ``send`` system call per frame;
during a burst of deltas that is most of what the gateway does. A server's frames are simple
(RFC 6455, section 5.2: final, unmasked, here uncompressed), so many are built at once and
handed to the connection's stream together.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

_FIN_TEXT = 0x81  # FIN bit + opcode 0x1 (text)


def text_frames(texts: Iterable[str]) -> bytes:
    """The bytes of one final, unmasked, uncompressed text frame per string, in order."""
    out = bytearray()
    for text in texts:
        data = text.encode()
        size = len(data)
        if size < 126:
            out += bytes((_FIN_TEXT, size))
        elif size <= 0xFFFF:
            out += struct.pack("!BBH", _FIN_TEXT, 126, size)
        else:
            out += struct.pack("!BBQ", _FIN_TEXT, 127, size)
        out += data
    return bytes(out)
