"""The recording mock upstream: an aiohttp app that answers like OpenAI and Anthropic and records all.

Routing: ``/ch/<channel>/<path>`` attributes a request to ``channel`` (default: ``default``);
``/__mock/...`` is the control API.  Every other request is recorded, even malformed or unknown.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
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
    redact_headers,
    redact_query,
)
from gatewaylens.errors import first_error
from gatewaylens.mock import answers
from gatewaylens.mock.models import MockAnswer, RecordedExchange, Script, ScriptStep, SSEFrame

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
            text = rec.model_dump_json()
            if self.record:
                q = self.records.get(rec.channel)
                if q is None:
                    q = self.records[rec.channel] = deque(maxlen=self.max_records)
                q.append((rec.seq, text))
            if self._record_fh:
                self._record_fh.write(text + "\n")
                self._record_fh.flush()
        if self.log:
            qs = "?" + "&".join(f"{k}={v}" for k, v in rec.query) if rec.query else ""
            mark = " stream" if rec.response.stream else ""
            self.log(f"#{rec.seq} [{rec.channel}] {rec.method} {rec.path}{qs} -> {rec.response.status}{mark} "
                     f"{rec.duration_ms:.1f}ms")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data, ensure_ascii=False), content_type="application/json")


def _control_error(status: int, message: str) -> web.Response:
    return _json({"error": {"message": message, "status": status}}, status)


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
        except ValueError as e:
            return _control_error(400, f"script body is not JSON: {e}")
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
        rec = self._new_record(request, raw, channel, path, started, dialect)
        self.state.in_flight[channel] = self.state.in_flight.get(channel, 0) + 1
        # The answer being written; kept here so a client that goes away mid-stream still leaves
        # an exact record of what was sent before it did.
        holder: list[MockAnswer] = [MockAnswer(status=500)]
        try:
            resp, holder[0] = await self._answer(request, raw, rec, channel, path, dialect, split is not None, t0, holder)
            return resp
        except (ConnectionResetError, asyncio.CancelledError):
            holder[0].cut = True
            raise
        finally:
            rec.response = holder[0]
            rec.duration_ms = round((time.perf_counter() - t0) * 1000, 3)
            self.state.store(rec)
            self.state.in_flight[channel] -= 1

    def _new_record(self, request: web.Request, raw: bytes, channel: str, path: str, started: datetime,
                    dialect: Dialect | None) -> RecordedExchange:
        try:
            text: str | None = raw.decode("utf-8")
            b64 = None
        except UnicodeDecodeError:
            text, b64 = None, base64.b64encode(raw).decode()
        parsed: Any = None
        is_json = False
        if text:
            with contextlib.suppress(ValueError):
                parsed, is_json = json.loads(text), True
        return RecordedExchange.model_construct(
            seq=0, channel=channel, instance=self.state.instance, time=started, duration_ms=0.0,
            method=request.method, path=path, raw_path=request.path,
            query=redact_query(request.query.items()), headers=redact_headers(request.headers.items()),
            dialect=dialect, body_text=text, body_b64=b64, body_size=len(raw), body_json=parsed, body_is_json=is_json,
            response=MockAnswer(status=0),
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
            msg = "gatewaylens mock: request body is empty" if not raw else "gatewaylens mock: request body is not a JSON object"
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
        text = json.dumps(body, ensure_ascii=False)
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
            text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
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
