"""Bulk-encoded WebSocket text frames parse as RFC 6455 frames, every length form included."""

from __future__ import annotations

from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from openfoal_server_ext.gateway.wsframes import text_frames


def _parse(data: bytes, count: int) -> list[Frame]:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    for _ in range(count):
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
        else:
            raise AssertionError("the parser wanted more bytes than a frame holds")
    assert not reader.buffer, "bytes left over after the last frame"
    return frames


def test_frames_round_trip_through_a_client_parser() -> None:
    texts = ["", "{}", "x" * 125, "y" * 126, "z" * 65535, "w" * 65536, '{"delta":"déjà vu ✓"}']
    frames = _parse(text_frames(texts), len(texts))
    assert [f.opcode for f in frames] == [Opcode.TEXT] * len(texts)
    assert all(f.fin and not (f.rsv1 or f.rsv2 or f.rsv3) for f in frames)
    assert [f.data.decode() for f in frames] == texts


def test_length_forms_follow_the_rfc() -> None:
    assert text_frames(["a" * 125])[:2] == bytes((0x81, 125))
    assert text_frames(["a" * 126])[:4] == bytes((0x81, 126, 0, 126))
    assert text_frames(["a" * 65536])[:10] == bytes((0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0))
    assert text_frames([]) == b""
