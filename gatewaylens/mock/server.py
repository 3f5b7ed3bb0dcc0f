"""The recording mock upstream: an aiohttp app that answers like OpenAI and Anthropic and records all.

Routing: ``/ch/<channel>/<path>`` attributes a request to ``channel`` (default: ``default``);
``/__mock/...`` is the control API.  Every other request is recorded, even malformed or unknown.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import re
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from aiohttp import web
from pydantic import ValidationError

from gatewaylens.dialects import (
    Dialect,
    dialect_for_path,
    encode_sse,
    error_body,
)
from gatewaylens.errors import first_error
from gatewaylens.mock import answers
from gatewaylens.mock.models import MockAnswer, RecordedExchange, Script, ScriptStep, SSEFrame
from gatewaylens.redaction import (
    printable,
    redact_headers,
    redact_json_text,
    redact_path,
    redact_query,
    redaction_marker,
)

CHANNEL_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DEFAULT_CHANNEL = "default"
DEFAULT_MAX_RECORDS = 10_000


class MockState:
    """Records and scripts, per channel.  Bounded: each channel keeps its newest ``max_records``."""

    def __init__(self, *, record_file: Path | None = None, latency_ms: float = 0.0, record: bool = True,
                 max_records: int = DEFAULT_MAX_RECORDS, log: Callable[[str], None] | None = None) -> None:
        self.instance = uuid.uuid4().hex[:12]
        self.started = datetime.now(UTC)
        self.seq = 0
        #: ``(seq, record as JSON)`` per channel.  Kept serialised: a string is one object the
        #: garbage collector never scans, where a live record is hundreds (measured: keeping 10,000
        #: records as objects cost 21-28% of the mock's throughput in GC passes; as JSON, ~5-10%).
        self.records: dict[str, deque[tuple[int, str]]] = {}
        #: Requests received but not yet answered in full, per channel (capture waits for zero).
        self.in_flight: dict[str, int] = {}
        self.scripts: dict[str, deque[ScriptStep]] = {}
        self.latency_ms = latency_ms
        self.record = record
        self.max_records = max_records
        self.log = log
        self._record_fh: IO[str] | None = record_file.open("a", encoding="utf-8") if record_file else None

    def close(self) -> None:
        if self._record_fh:
            self._record_fh.close()
            self._record_fh = None

    def next_step(self, channel: str) -> ScriptStep | None:
        q = self.scripts.get(channel)
        if not q:
            return None
        step = q[0]
        if step.times <= 1:
            q.popleft()
        else:
            q[0] = step.model_copy(update={"times": step.times - 1})
        return step

    def store(self, rec: RecordedExchange) -> None:
        """Assign the sequence number at completion, so ``since=<seq>`` readers never miss a record."""
        self.seq += 1
        rec.seq = self.seq
        if self.record or self._record_fh:
            text = serialise_record(rec)
            if self.record:
                q = self.records.get(rec.channel)
                if q is None:
                    q = self.records[rec.channel] = deque(maxlen=self.max_records)
                q.append((rec.seq, text))
            if self._record_fh:
                self._record_fh.write(text + "\n")
                self._record_fh.flush()
        if self.log:
            # Path and query are redacted already; control characters are escaped (one line, no
            # terminal escape sequences), and a huge path is shortened.
            qs = "?" + "&".join(f"{k}={v}" for k, v in rec.query) if rec.query else ""
            where = printable(f"{rec.path}{qs}")
            if len(where) > 300:
                where = where[:299] + "…"
            mark = " stream" if rec.response.stream else ""
            self.log(f"#{rec.seq} [{printable(rec.channel)}] {printable(rec.method)} {where} -> {rec.response.status}"
                     f"{mark} {rec.duration_ms:.1f}ms")


#: Parsed bodies deeper than this are not stored parsed (pydantic cannot serialise ~250+ levels).
MAX_STORED_DEPTH = 128


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value, counted iteratively up to ``limit + 1``."""
    best = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, (dict, list)):
            best = max(best, d)
            if best > limit:
                return best
            stack.extend((v, d + 1) for v in (node.values() if isinstance(node, dict) else node))
    return best


def _fix_surrogates(value: Any) -> Any:
    """A copy with lone surrogates (unencodable in UTF-8) replaced by U+FFFD, any depth."""
    def fix(s: str) -> str:
        return s.encode("utf-8", "surrogatepass").decode("utf-8", "replace") if any(
            "\ud800" <= c <= "\udfff" for c in s) else s

    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]
    while stack:
        parent, slot, node = stack.pop()
        if isinstance(node, dict):
            new: dict[Any, Any] = {}
            parent[slot] = new
            for k, v in node.items():
                nk = fix(k) if isinstance(k, str) else k
                new[nk] = None
                stack.append((new, nk, v))
        elif isinstance(node, (list, tuple)):
            lst: list[Any] = [None] * len(node)
            parent[slot] = lst
            stack.extend((lst, i, v) for i, v in enumerate(node))
        elif isinstance(node, str):
            parent[slot] = fix(node)
        else:
            parent[slot] = node
    return root[0]


def serialise_record(rec: RecordedExchange) -> str:
    """The record as one JSON line, whatever it holds.

    Lone surrogates (a JavaScript gateway cutting a string mid-emoji) cannot be written as UTF-8:
    they become U+FFFD in the parsed fields, with a note (``body_text`` keeps the exact escape).  A
    value that still cannot be written is dropped from the parsed fields with a note; the raw body
    (``body_text``/``body_b64``) is always kept.
    """
    try:
        return rec.model_dump_json()
    except (ValueError, UnicodeError):
        pass
    rec.notes.append("lone surrogates (not encodable as UTF-8) replaced with U+FFFD in the stored fields; "
                     "body_text keeps the body's own escapes")
    data = _fix_surrogates(rec.model_dump(mode="python"))
    try:
        return RecordedExchange.model_validate(data).model_dump_json()
    except (ValueError, UnicodeError):
        pass
    rec.notes.append("the parsed body and the answer body could not be stored; the raw body is kept")
    data["body_json"] = None
    data["response"]["body"] = None
    try:
        return RecordedExchange.model_validate(data).model_dump_json()
    except (ValueError, UnicodeError):
        raw = (rec.body_text or "").encode("utf-8", "surrogatepass")
        return RecordedExchange.model_construct(
            seq=rec.seq, channel=printable(rec.channel)[:200], instance=rec.instance, time=rec.time,
            duration_ms=rec.duration_ms, method=printable(rec.method)[:20], path=printable(rec.path)[:2000],
            raw_path=printable(rec.raw_path)[:2000], query=[], headers={}, dialect=rec.dialect, body_text=None,
            body_b64=rec.body_b64 or base64.b64encode(raw).decode(), body_size=rec.body_size, body_json=None,
            body_is_json=rec.body_is_json, response=MockAnswer(status=rec.response.status, stream=rec.response.stream),
            redacted=rec.redacted, notes=[*rec.notes, "headers, query and answer could not be stored"],
        ).model_dump_json()


def dump_json(body: Any) -> str:
    """JSON text of an answer that is always encodable as UTF-8 (lone surrogates escaped)."""
    text = json.dumps(body, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(body)
    return text


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data, ensure_ascii=False), content_type="application/json")


def _control_error(status: int, message: str) -> web.Response:
    return _json({"error": {"message": message, "status": status}}, status)


def _non_finite(data: Any) -> str | None:
    """Dotted path of the first non-finite number in a parsed script (``steps[0].body.x``), or None."""
    from gatewaylens.dialects import dotted

    root: Any = {"steps": data} if isinstance(data, list) else (
        {"steps": [data]} if isinstance(data, dict) and "steps" not in data else data)
    stack: list[tuple[Any, list[str | int]]] = [(root, [])]
    while stack:
        node, where = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return dotted(where) or "(script)"
        if isinstance(node, dict):
            stack.extend((v, [*where, str(k)]) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, [*where, i]) for i, v in enumerate(node))
    return None


def split_channel(raw_path: str) -> tuple[str, str] | None:
    """``/ch/litellm/v1/messages`` -> ``("litellm", "/v1/messages")``; None for a bad channel name."""
    if raw_path.startswith("/ch/"):
        rest = raw_path[4:]
        name, _, tail = rest.partition("/")
        if not CHANNEL_RE.match(name):
            return None
        return name, "/" + tail
    return DEFAULT_CHANNEL, raw_path


class MockApp:
    def __init__(self, state: MockState) -> None:
        self.state = state
        self.app = web.Application(client_max_size=256 * 1024 * 1024)
        self.app.router.add_route("*", "/__mock/{op}", self.control)
        self.app.router.add_route("*", "/{tail:.*}", self.upstream)

    # ---------------------------------------------------------------- control API
    async def control(self, request: web.Request) -> web.StreamResponse:
        op = request.match_info["op"]
        channel = request.query.get("channel")
        if channel is not None and not CHANNEL_RE.match(channel):
            return _control_error(400, "channel must match [A-Za-z0-9._-]{1,64}")
        st = self.state
        handlers: dict[tuple[str, str], Callable[[], Any]] = {
            ("POST", "reset"): lambda: self._reset(channel),
            ("GET", "health"): lambda: _json({"status": "ok", "instance": st.instance, "last_seq": st.seq,
                                              "started": st.started.isoformat(), "recording": st.record,
                                              "channels": {k: len(v) for k, v in st.records.items()}}),
            ("GET", "log"): lambda: self._log(request, channel),
            ("GET", "last"): lambda: self._last(channel),
            ("GET", "script"): lambda: _json({"channel": channel or DEFAULT_CHANNEL, "steps": [
                s.model_dump(mode="json", exclude_defaults=True) for s in st.scripts.get(channel or DEFAULT_CHANNEL, [])]}),
            ("DELETE", "script"): lambda: self._clear_script(channel),
        }
        if (request.method, op) == ("POST", "script"):
            return await self._script(request, channel or DEFAULT_CHANNEL)
        handler = handlers.get((request.method, op))
        if handler is None:
            known = sorted({f"{m} /__mock/{o}" for m, o in [*handlers, ("POST", "script")]})
            if any(o == op for _, o in handlers) or op == "script":
                return _control_error(405, f"method {request.method} not allowed for /__mock/{op}; known: {', '.join(known)}")
            return _control_error(404, f"unknown control endpoint /__mock/{op}; known: {', '.join(known)}")
        result: web.Response = handler()
        return result

    def _reset(self, channel: str | None) -> web.Response:
        st = self.state
        if channel is None:
            cleared = sum(len(q) for q in st.records.values())
            st.records.clear()
            st.scripts.clear()
        else:
            cleared = len(st.records.pop(channel, ()))
            st.scripts.pop(channel, None)
        return _json({"reset": channel or "all", "cleared": cleared, "last_seq": st.seq, "instance": st.instance})

    def _log(self, request: web.Request, channel: str | None) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
            limit = int(request.query.get("limit", "0"))
        except ValueError:
            return _control_error(400, "since and limit must be integers")
        if since < 0 or limit < 0:
            return _control_error(400, "since and limit must be >= 0")
        st = self.state
        queues = [st.records.get(channel, deque())] if channel is not None else list(st.records.values())
        recs: list[tuple[int, str]] = []
        for q in queues:
            for item in reversed(q):  # newest first: a reader polling with since=<last seq> reads little
                if item[0] <= since:
                    break
                recs.append(item)
        recs.sort(key=lambda r: r[0])
        if limit:
            recs = recs[:limit]
        in_flight = st.in_flight.get(channel, 0) if channel is not None else sum(st.in_flight.values())
        body = ('{"instance":' + json.dumps(st.instance) + ',"last_seq":' + str(st.seq) + ',"in_flight":'
                + str(in_flight) + ',"records":[' + ",".join(text for _, text in recs) + "]}")
        return web.Response(text=body, content_type="application/json")

    def _last(self, channel: str | None) -> web.Response:
        q = self.state.records.get(channel or DEFAULT_CHANNEL)
        if not q:
            return _control_error(404, f"no record on channel {channel or DEFAULT_CHANNEL!r}")
        return web.Response(text=q[-1][1], content_type="application/json")

    def _clear_script(self, channel: str | None) -> web.Response:
        dropped = len(self.state.scripts.pop(channel or DEFAULT_CHANNEL, ()))
        return _json({"channel": channel or DEFAULT_CHANNEL, "cleared": dropped})

    async def _script(self, request: web.Request, channel: str) -> web.Response:
        raw = await request.read()
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as e:
            return _control_error(400, f"script body is not JSON: {str(e)[:200]}")
        bad = _non_finite(data)
        if bad is not None:
            # NaN / Infinity are not JSON: an answer carrying one would break the gateway reading it.
            return _control_error(400, f"invalid script: {bad}: non-finite number (NaN/Infinity is not JSON)")
        if isinstance(data, list):
            data = {"steps": data}
        elif isinstance(data, dict) and "steps" not in data:
            data = {"steps": [data]}
        try:
            script = Script.model_validate(data)
        except ValidationError as e:
            field, msg = first_error(e, "(script)")
            return _control_error(400, f"invalid script: {field}: {msg}")
        q = self.state.scripts.setdefault(channel, deque())
        if script.mode == "replace":
            q.clear()
        q.extend(script.steps)
        # instance and last_seq let a client that posts a script before each request (capture) notice a
        # restarted mock without a separate health/log round trip.
        return _json({"channel": channel, "queued": len(q), "instance": self.state.instance,
                      "last_seq": self.state.seq})

    # ---------------------------------------------------------------- upstream API
    async def upstream(self, request: web.Request) -> web.StreamResponse:
        t0 = time.perf_counter()
        started = datetime.now(UTC)
        raw = await request.read()
        raw_path = request.path
        split = split_channel(raw_path)
        channel, path = split if split else (DEFAULT_CHANNEL, raw_path)
        dialect = dialect_for_path(path) if request.method == "POST" else None
        self.state.in_flight[channel] = self.state.in_flight.get(channel, 0) + 1
        try:
            rec = self._new_record(request, raw, channel, path, started, dialect)
            # The answer being written; kept here so a client that goes away mid-stream still leaves
            # an exact record of what was sent before it did.
            holder: list[MockAnswer] = [MockAnswer(status=500)]
            try:
                resp, holder[0] = await self._answer(request, raw, rec, channel, path, dialect, split is not None, t0,
                                                     holder)
                return resp
            except (ConnectionResetError, asyncio.CancelledError):
                holder[0].cut = True
                raise
            except Exception as e:  # a request the mock cannot answer is malformed input: a 4xx, never a 500
                rec.notes.append(f"the mock could not answer this request ({type(e).__name__}); answered 400")
                msg = f"gatewaylens mock: cannot answer this request: {type(e).__name__}: {str(e)[:200]}"
                resp, holder[0] = self._plain(400, error_body(dialect, 400, msg), dialect=dialect)
                return resp
            finally:
                rec.response = holder[0]
                rec.duration_ms = round((time.perf_counter() - t0) * 1000, 3)
                self.state.store(rec)
        finally:
            self.state.in_flight[channel] -= 1

    def _new_record(self, request: web.Request, raw: bytes, channel: str, path: str, started: datetime,
                    dialect: Dialect | None) -> RecordedExchange:
        """The record of a request, every credential redacted (headers, query, path, body)."""
        notes: list[str] = []
        redacted: list[str] = []
        b64: str | None = None
        try:
            text: str | None = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            text = raw.decode("utf-8", "replace")
            b64 = base64.b64encode(raw).decode()
            notes.append(f"the body is not valid UTF-8 (byte {e.start}): body_text is decoded with U+FFFD "
                         "replacements, body_b64 holds the exact bytes")
        parsed: Any = None
        is_json = False
        if text:
            found: set[str] = set()
            text, parsed, is_json, found = redact_json_text(text)
            if found:
                redacted.append("body")
                if b64 is not None:
                    exact = raw
                    for secret in sorted(found, key=len, reverse=True):
                        exact = exact.replace(secret.encode("utf-8", "surrogatepass"),
                                              redaction_marker(secret).encode())
                    b64 = base64.b64encode(exact).decode()
            if not is_json and text.lstrip()[:1] in ("{", "["):
                try:
                    json.loads(text)
                except RecursionError:
                    is_json = True
                    notes.append("the body is JSON nested too deeply to parse: kept as text only")
                except ValueError:
                    pass
            if parsed is not None and _depth(parsed, MAX_STORED_DEPTH) > MAX_STORED_DEPTH:
                notes.append(f"the body is JSON nested deeper than {MAX_STORED_DEPTH} levels: body_json not stored, "
                             "body_text is the body")
                parsed = None
        hfound: set[str] = set()
        headers = redact_headers(request.headers.items(), hfound)
        if hfound:
            redacted.append("headers")
        qfound: set[str] = set()
        query = redact_query(request.query.items(), qfound)
        if qfound:
            redacted.append("query")
        pfound: set[str] = set()
        safe_path, safe_raw = redact_path(path, pfound), redact_path(request.path, pfound)
        if pfound:
            redacted.append("path")
        return RecordedExchange.model_construct(
            seq=0, channel=channel, instance=self.state.instance, time=started, duration_ms=0.0,
            method=request.method, path=safe_path, raw_path=safe_raw, query=query, headers=headers,
            dialect=dialect, body_text=text, body_b64=b64, body_size=len(raw), body_json=parsed, body_is_json=is_json,
            response=MockAnswer(status=0), redacted=redacted, notes=notes,
        )

    async def _answer(self, request: web.Request, raw: bytes, rec: RecordedExchange, channel: str, path: str,
                      dialect: Dialect | None, channel_ok: bool, t0: float,
                      holder: list[MockAnswer]) -> tuple[web.StreamResponse, MockAnswer]:
        st = self.state
        if not channel_ok:
            return self._plain(404, {"error": {"message": "bad channel name in /ch/<channel>/ prefix", "type": "not_found"}})
        norm = path.rstrip("/") or "/"
        if request.method == "GET" and norm in ("/health", "/v1/health", "/"):
            return self._plain(200, {"status": "ok", "instance": st.instance})
        if request.method == "GET" and norm in ("/v1/models", "/models"):
            return self._plain(200, answers.models_body())
        if request.method == "GET" and (norm.startswith("/v1/models/") or norm.startswith("/models/")):
            mid = norm.rsplit("/", 1)[-1]
            item = next((m for m in answers.models_body()["data"] if m["id"] == mid), None)
            if item:
                return self._plain(200, item)
        if dialect is None:
            return self._plain(404, {"error": {"message": f"gatewaylens mock: no route {request.method} {path}",
                                               "type": "not_found_error"}})
        step = st.next_step(channel)
        delay = (step.delay_ms if step else 0) + st.latency_ms
        if delay:
            await asyncio.sleep(delay / 1000)
        extra_headers = dict(step.headers) if step else {}
        if step and step.status and step.status >= 400:
            err = step.body if step.body is not None else error_body(
                dialect, step.status, step.error_message or f"gatewaylens mock: scripted {step.status}", step.error_type)
            resp, ans = self._plain(step.status, err, extra_headers, dialect=dialect)
            ans.scripted = step.describe()
            return resp, ans
        if not rec.body_is_json or not isinstance(rec.body_json, dict):
            msg = ("gatewaylens mock: request body is empty" if not raw else
                   "gatewaylens mock: request body is nested too deeply" if rec.body_is_json and rec.body_json is None
                   else "gatewaylens mock: request body is not a JSON object")
            return self._plain(400, error_body(dialect, 400, msg), dialect=dialect)
        body: dict[str, Any] = rec.body_json
        streaming = body.get("stream") is True
        status = step.status if step and step.status else 200
        if step and step.body is not None and step.events is None and not (streaming and step.cut_after is not None):
            resp, ans = self._plain(status, step.body, extra_headers)
            ans.scripted = step.describe()
            return resp, ans
        plan = answers.make_plan(
            dialect, body, st.seq + 1, len(raw),
            text=step.text if step else None,
            tool_name=step.tool_call.name if step and step.tool_call else None,
            tool_args=step.tool_call.arguments if step and step.tool_call else None,
            force_tool=bool(step and step.tool_call),
            shapes=step.shapes if step else (),
        )
        if step and step.events is not None:
            events: list[tuple[str | None, Any]] = [(e.event, e.data) for e in step.events]
            return await self._stream(request, events, step, extra_headers, t0, status, holder)
        if streaming:
            return await self._stream(request, answers.render_events(plan), step, extra_headers, t0, status, holder)
        resp, ans = self._plain(status, answers.render_body(plan), extra_headers, dialect=dialect)
        if step:
            ans.scripted = step.describe()
        return resp, ans

    def _plain(self, status: int, body: Any, headers: dict[str, str] | None = None,
               dialect: Dialect | None = None) -> tuple[web.Response, MockAnswer]:
        hdrs = {"x-request-id": f"req_gwl{uuid.uuid4().hex[:16]}", **(headers or {})}
        if dialect == "messages":
            hdrs.setdefault("request-id", hdrs["x-request-id"])
        text = dump_json(body)
        resp = web.Response(status=status, text=text, content_type="application/json", headers=hdrs)
        return resp, MockAnswer(status=status, headers={**hdrs, "content-type": "application/json"}, body=body)

    async def _stream(self, request: web.Request, events: list[tuple[str | None, Any]], step: ScriptStep | None,
                      headers: dict[str, str], t0: float, status: int,
                      holder: list[MockAnswer]) -> tuple[web.StreamResponse, MockAnswer]:
        hdrs = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
                "x-request-id": f"req_gwl{uuid.uuid4().hex[:16]}", **headers}
        resp = web.StreamResponse(status=status, headers=hdrs)
        answer = MockAnswer(status=status, headers=hdrs, frames=[], stream=True,
                            scripted=step.describe() if step else None)
        frames = answer.frames
        assert frames is not None
        holder[0] = answer
        await resp.prepare(request)
        cut_after = step.cut_after if step else None
        for i, (event, data) in enumerate(events):
            if cut_after is not None and i >= cut_after:
                answer.cut = True
                # Abort the connection without the terminating chunk: a real mid-stream cut.
                if request.transport is not None:
                    request.transport.abort()
                return resp, answer
            text = data if isinstance(data, str) else dump_json(data)
            frames.append(SSEFrame(event=event, data=text, offset_ms=round((time.perf_counter() - t0) * 1000, 3)))
            await resp.write(encode_sse(text, event))
        await resp.write_eof()
        return resp, answer


class MockServer:
    """Run the mock in-process (used by capture and tests)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9999, *, record_file: Path | None = None,
                 latency_ms: float = 0.0, record: bool = True, max_records: int = DEFAULT_MAX_RECORDS,
                 log: Callable[[str], None] | None = None) -> None:
        self.host, self.port = host, port
        self.state = MockState(record_file=record_file, latency_ms=latency_ms, record=record,
                               max_records=max_records, log=log)
        self.mock = MockApp(self.state)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.mock.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            server = site._server
            if server is not None and getattr(server, "sockets", None):
                self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
            self._runner = None
        self.state.close()

    async def __aenter__(self) -> MockServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def run_forever(server: MockServer, banner: Callable[[MockServer], None]) -> None:
    """Serve until SIGINT/SIGTERM; stop cleanly."""
    import signal

    async def main() -> None:
        await server.start()
        banner(server)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()
        print("gatewaylens mock stopped", file=sys.stderr)

    asyncio.run(main())
