"""gatewaylens.sse against the WHATWG "Interpreting an event stream" rules (section 9.2.6 of the HTML
standard), chunk boundaries included."""

from __future__ import annotations

import pytest

from gatewaylens.sse import ServerSentEvent, SSEDecoder, encode_sse, iter_sse_text

STREAM = (
    ": a comment line\r\n"
    "event: message_start\r\n"
    "data: {\"a\":1}\r\n"
    "\r\n"
    "data:  two spaces keep one\r"
    "data:second line\r"
    "\r"
    "id: 7\n"
    "data: [DONE]\n"
    "\n"
    "\n"  # a second blank line is no event, although an id was seen (httpx-sse made it one)
    "event: ping\n"
    "\n"  # an event type without data: still dispatched (documented deviation)
    "data: tail \u2028 inside, no blank line after"
)
EXPECTED = [
    ("message_start", '{"a":1}'),
    (None, " two spaces keep one\nsecond line"),
    (None, "[DONE]"),
    ("ping", ""),
    (None, "tail \u2028 inside, no blank line after"),
]


def test_whole_text() -> None:
    assert list(iter_sse_text(STREAM)) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_any_chunking_gives_the_same_events(size: int) -> None:
    d = SSEDecoder()
    events: list[ServerSentEvent] = []
    for i in range(0, len(STREAM), size):
        events += d.feed(STREAM[i: i + size])
    assert d.pending
    tail = d.flush()
    assert tail is not None and not d.pending
    got = [(e.event if e.event != "message" else None, e.data) for e in [*events, tail]]
    assert got == EXPECTED
    assert events[2].id == "7" and events[3].id == "7"  # the last event ID carries over


def test_line_api_and_fields() -> None:
    d = SSEDecoder()
    for line in ("retry: 1500", "id: a\0b", "unknown: x", "data: x"):
        assert d.decode(line) is None
    sse = d.decode("")
    assert sse == ServerSentEvent(event="message", data="x", id="", retry=1500)
    for line in ("retry: 1.5", "retry: -1", "unknown: y"):
        d.decode(line)
    assert d.decode("") is None  # nothing valid was set: no event
    assert d.flush() is None


def test_encode_round_trips() -> None:
    text = (encode_sse('{"x": "a\\nb"}', "delta") + encode_sse("one\ntwo") + encode_sse("[DONE]")).decode()
    assert list(iter_sse_text(text)) == [("delta", '{"x": "a\\nb"}'), (None, "one\ntwo"), (None, "[DONE]")]
