"""Server-sent events, both ways: the one place that frames and parses ``text/event-stream``.

Parsing follows the WHATWG HTML standard, "Interpreting an event stream"
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
lines end in CRLF, LF or CR (and nothing else: a U+2028 inside a JSON string is data); a line
starting with ``:`` is a comment; ``field: value`` loses one leading space from the value;
``data`` lines join with LF; a blank line dispatches the event; an ``id`` holding NUL is ignored.

A home-made parser, on purpose: httpx-sse's public API (``EventSource``) reads a whole
``httpx.Response`` and never hands back the event a stream leaves unterminated at its end, which
capture must keep (flagged); its decoder is private.  One deviation from the standard, kept from
what capture always recorded: an event that names an ``event:`` type (or an ``id``/``retry``) but
carries no ``data`` line is still dispatched, with empty data — a gateway's bare ``event: ping``
is a fact to show, not to hide.  Unlike httpx-sse, an ``id`` seen once does not make every later
blank line an event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent", "encode_sse", "iter_sse_text", "split_sse_lines"]


def encode_sse(data: str, event: str | None = None) -> bytes:
    """One SSE frame.  ``data`` is already serialised (JSON text or ``[DONE]``)."""
    head = f"event: {event}\n" if event else ""
    body = "".join(f"data: {line}\n" for line in data.split("\n"))
    return (head + body + "\n").encode()


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event; ``event`` is ``"message"`` when the stream named none."""

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None


def split_sse_lines(text: str) -> list[str]:
    """``text`` cut at CRLF, LF and CR only; a final line terminator adds no empty line."""
    if not text:
        return []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if text[-1] in "\r\n":
        lines.pop()
    return lines


class SSEDecoder:
    """Incremental event-stream parser.

    Feed it one line at a time (:meth:`decode`, the line without its terminator), or text as it
    arrives (:meth:`feed`, which finds the lines itself, even when a chunk ends between CR and LF);
    :meth:`flush` at the end of the stream returns the event left without its closing blank line.
    """

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id = ""  # the last event ID: kept across events, as the standard says
        self._retry: int | None = None
        #: whether the event being built has any field yet (dispatch only those)
        self._started = False
        self._partial = ""  # text of a line not terminated yet (feed)
        self._cr = False  # the last chunk ended in CR: a leading LF of the next one is its pair

    def decode(self, line: str) -> ServerSentEvent | None:
        """Process one line; the event it completes (a blank line after fields), else ``None``."""
        if not line:
            if not self._started:
                return None
            sse = ServerSentEvent(event=self._event or "message", data="\n".join(self._data), id=self._id,
                                  retry=self._retry)
            self._event, self._data, self._retry, self._started = "", [], None, False
            return sse
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" in value:
                return None
            self._id = value
        elif name == "retry":
            if not value.isascii() or not value.isdigit():
                return None
            self._retry = int(value)
        else:
            return None  # an unknown field is ignored
        self._started = True
        return None

    def feed(self, text: str) -> list[ServerSentEvent]:
        """Process a chunk of the stream; the events it completes."""
        if self._cr and text.startswith("\n"):
            text = text[1:]
        self._cr = text.endswith("\r")
        buf = self._partial + text
        cut = max(buf.rfind("\n"), buf.rfind("\r"))
        if cut < 0:
            self._partial = buf
            return []
        self._partial = buf[cut + 1:]
        out = []
        for line in split_sse_lines(buf[: cut + 1]):
            sse = self.decode(line)
            if sse is not None:
                out.append(sse)
        return out

    def flush(self) -> ServerSentEvent | None:
        """End of stream: the event still being built (its blank line never came), if any."""
        if self._partial:
            line, self._partial = self._partial, ""
            self.decode(line)
        return self.decode("")

    @property
    def pending(self) -> bool:
        """Whether an event (or a line of one) has started and not been dispatched."""
        return self._started or bool(self._partial)


def iter_sse_text(text: str) -> Iterator[tuple[str | None, str]]:
    """A complete SSE body as ``(event, data)`` pairs (``event`` is ``None`` for the default
    ``message``); an event left unterminated at the end is included."""
    decoder = SSEDecoder()
    events = decoder.feed(text)
    last = decoder.flush()
    for sse in [*events, *([last] if last is not None else [])]:
        yield (sse.event if sse.event != "message" else None), sse.data
