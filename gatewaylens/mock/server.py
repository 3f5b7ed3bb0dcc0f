"""The recording mock upstream: an aiohttp app that answers like OpenAI and Anthropic and records all.

Routing: ``/ch/<channel>/<path>`` attributes a request to ``channel`` (default: ``default``);
``/__mock/...`` is the control API.  Every other request is recorded, even malformed or unknown.

Isolation (see README, "Secrets and isolation"):

* **Control token.**  Reading (``log``, ``last``), scripting and resetting a channel needs a token in
  the ``x-gwl-token`` header: the mock's own control token (random per process unless given; the
  ``mock`` command prints it), or the lease token of that channel.  ``health`` and taking a lease
  need none.  A mock started with ``require_token=False`` (``mock --no-token``) checks no token.
* **Leases.**  ``POST /__mock/lease?channel=C`` gives one client (a capture run) the channel and a
  token for it; another client asking for the same channel while the lease is live gets a 409.
  A lease lasts ``ttl_s`` (default 60 s) and is renewed by every call made with its token.
* **Reset generation.**  Each channel counts the resets that touched it (``generation``, with the
  time of the last one, ``reset_at``), reported by ``log``, ``script``, ``lease`` and ``health``: a
  reader notices a reset it did not make even when the records it would have read are gone.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import ipaddress
import json
import math
import re
import secrets
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
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
    redact_text,
    redaction_marker,
)

CHANNEL_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DEFAULT_CHANNEL = "default"
DEFAULT_MAX_RECORDS = 10_000
#: The header that carries a control or lease token.
TOKEN_HEADER = "x-gwl-token"
DEFAULT_LEASE_TTL_S = 60.0
MAX_LEASE_TTL_S = 86_400.0


def new_token() -> str:
    return secrets.token_urlsafe(18)


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address; anything else (0.0.0.0, ::, a LAN address, a name)
    exposes the mock beyond this machine."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


@dataclass
class Lease:
    """One client's hold on a channel."""

    token: str
    holder: str
    ttl_s: float | None  # None: until released (an in-process owner)
    expires: float | None  # time.monotonic() deadline

    def live(self, now: float | None = None) -> bool:
        return self.expires is None or (now if now is not None else time.monotonic()) < self.expires

    def renew(self) -> None:
        if self.ttl_s is not None:
            self.expires = time.monotonic() + self.ttl_s

    def expires_in(self) -> float | None:
        return None if self.expires is None else max(0.0, round(self.expires - time.monotonic(), 1))


class LeaseBusy(Exception):
    """The channel is leased by another client."""


class MockState:
    """Records and scripts, per channel.  Bounded: each channel keeps its newest ``max_records``."""

    def __init__(self, *, record_file: Path | None = None, latency_ms: float = 0.0, record: bool = True,
                 max_records: int = DEFAULT_MAX_RECORDS, log: Callable[[str], None] | None = None,
                 on_secrets: Callable[[set[str]], None] | None = None, token: str | None = None,
                 require_token: bool = True) -> None:
        self.instance = uuid.uuid4().hex[:12]
        #: the control token (None: the mock runs open, no token is checked)
        self.token: str | None = (token or new_token()) if require_token else None
        self.leases: dict[str, Lease] = {}
        #: resets per channel, resets of every channel, and when the last of each happened
        self._generations: dict[str, int] = {}
        self._reset_times: dict[str, datetime] = {}
        self._reset_all = 0
        self._reset_all_time: datetime | None = None
        #: called with the exact secrets redacted from each request (never stored)
        self.on_secrets = on_secrets
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

    # ---------------------------------------------------------------- leases, tokens, generations
    def generation(self, channel: str) -> int:
        return self._generations.get(channel, 0) + self._reset_all

    def reset_at(self, channel: str) -> datetime | None:
        times = [t for t in (self._reset_times.get(channel), self._reset_all_time) if t is not None]
        return max(times) if times else None

    def generations(self) -> dict[str, int]:
        names = set(self._generations) | set(self.records) | set(self.leases)
        return {n: self.generation(n) for n in sorted(names) if self.generation(n)}

    def reset(self, channel: str | None) -> int:
        """Drop the records and scripts of one channel (or all); the generation counts it."""
        now = datetime.now(UTC)
        if channel is None:
            cleared = sum(len(q) for q in self.records.values())
            self.records.clear()
            self.scripts.clear()
            self._reset_all += 1
            self._reset_all_time = now
        else:
            cleared = len(self.records.pop(channel, ()))
            self.scripts.pop(channel, None)
            self._generations[channel] = self._generations.get(channel, 0) + 1
            self._reset_times[channel] = now
        return cleared

    def live_lease(self, channel: str) -> Lease | None:
        lease = self.leases.get(channel)
        if lease is not None and not lease.live():
            del self.leases[channel]
            return None
        return lease

    def lease(self, channel: str, holder: str, ttl_s: float | None = DEFAULT_LEASE_TTL_S,
              token: str | None = None) -> Lease:
        """Take (or, with its token, renew) the lease on ``channel``; :class:`LeaseBusy` when another
        client holds it."""
        current = self.live_lease(channel)
        if current is not None:
            if token is not None and hmac.compare_digest(token, current.token):
                current.renew()
                return current
            raise LeaseBusy(channel)
        lease = Lease(token=new_token(), holder=holder[:200], ttl_s=ttl_s,
                      expires=None if ttl_s is None else time.monotonic() + ttl_s)
        self.leases[channel] = lease
        return lease

    def release(self, channel: str, token: str | None) -> bool:
        lease = self.live_lease(channel)
        if lease is None:
            return False
        if token is None or not (hmac.compare_digest(token, lease.token) or self.is_admin(token)):
            raise LeaseBusy(channel)
        del self.leases[channel]
        return True

    def is_admin(self, token: str | None) -> bool:
        return self.token is None or (token is not None and hmac.compare_digest(token, self.token))

    def authorized(self, token: str | None, channel: str | None) -> bool:
        """May a control call carrying ``token`` act on ``channel`` (None: every channel)?"""
        if self.is_admin(token):
            return True
        if channel is None or token is None:
            return False
        lease = self.live_lease(channel)
        if lease is not None and hmac.compare_digest(token, lease.token):
            lease.renew()
            return True
        return False

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
        token = request.headers.get(TOKEN_HEADER)
        if op == "lease":
            return await self._lease(request, channel, token)
        # The channel a call acts on (None: every channel, which only the control token may touch).
        scoped = channel if channel is not None else (DEFAULT_CHANNEL if op in ("last", "script") else None)
        if op in ("reset", "log", "last", "script") and not st.authorized(token, scoped):
            lease = st.live_lease(scoped) if scoped is not None else None
            target = f"channel {scoped!r}" if scoped is not None else "every channel"
            why = (f"{target} is leased by {lease.holder!r}: send its lease token" if lease is not None else
                   f"{target} needs the mock's control token (printed by `mock` at start)")
            status = 401 if token is None else 403
            return _control_error(status, f"{request.method} /__mock/{op}: {why} in the {TOKEN_HEADER} header")
        handlers: dict[tuple[str, str], Callable[[], Any]] = {
            ("POST", "reset"): lambda: self._reset(channel),
            ("GET", "health"): lambda: _json({"status": "ok", "instance": st.instance, "last_seq": st.seq,
                                              "started": st.started.isoformat(), "recording": st.record,
                                              "channels": {k: len(v) for k, v in st.records.items()},
                                              "in_flight": sum(st.in_flight.values()),
                                              "auth": "open" if st.token is None else "token",
                                              "generations": st.generations(),
                                              "leases": {k: {"holder": v.holder, "expires_in_s": v.expires_in()}
                                                         for k, v in list(st.leases.items()) if st.live_lease(k)}}),
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
        cleared = st.reset(channel)
        out: dict[str, Any] = {"reset": channel or "all", "cleared": cleared, "last_seq": st.seq, "instance": st.instance}
        if channel is not None:
            out["generation"] = st.generation(channel)
        return _json(out)

    def _channel_state(self, channel: str) -> str:
        """``"generation":N,"reset_at":...`` for a JSON answer about one channel."""
        at = self.state.reset_at(channel)
        return f'"generation":{self.state.generation(channel)},"reset_at":{json.dumps(at.isoformat() if at else None)}'

    async def _lease(self, request: web.Request, channel: str | None, token: str | None) -> web.Response:
        st = self.state
        if request.method == "GET":
            return _json({"leases": {k: {"holder": v.holder, "expires_in_s": v.expires_in()}
                                     for k, v in list(st.leases.items()) if st.live_lease(k)}})
        if channel is None:
            return _control_error(400, "/__mock/lease needs ?channel=NAME")
        if request.method == "DELETE":
            try:
                released = st.release(channel, token)
            except LeaseBusy:
                return _control_error(403, f"channel {channel!r} is leased by another client; only its lease token "
                                      "or the mock's control token can release it")
            return _json({"channel": channel, "released": released})
        if request.method != "POST":
            return _control_error(405, f"method {request.method} not allowed for /__mock/lease; known: "
                                  "GET /__mock/lease, POST /__mock/lease, DELETE /__mock/lease")
        raw = await request.read()
        try:
            data = json.loads(raw) if raw.strip() else {}
        except (ValueError, RecursionError):
            return _control_error(400, "lease body is not JSON")
        if not isinstance(data, dict):
            return _control_error(400, "lease body must be a JSON object")
        holder, ttl = data.get("holder", ""), data.get("ttl_s", DEFAULT_LEASE_TTL_S)
        if not isinstance(holder, str) or not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or not (
                0 < ttl <= MAX_LEASE_TTL_S):
            return _control_error(400, f"lease: holder must be a string and ttl_s a number in (0, {MAX_LEASE_TTL_S:g}]")
        try:
            lease = st.lease(channel, printable(holder) or "(unnamed)", float(ttl), token)
        except LeaseBusy:
            cur = st.live_lease(channel)
            left = f"; the lease ends in {cur.expires_in():g} s unless renewed" if cur and cur.expires_in() is not None else ""
            return _control_error(409, f"channel {channel!r} is in use by another client "
                                  f"({cur.holder if cur else 'unknown'}){left}")
        body = {"channel": channel, "token": lease.token, "holder": lease.holder, "ttl_s": lease.ttl_s,
                "expires_in_s": lease.expires_in(), "instance": st.instance, "last_seq": st.seq,
                "generation": st.generation(channel)}
        at = st.reset_at(channel)
        body["reset_at"] = at.isoformat() if at else None
        return _json(body)

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
        gen = ("," + self._channel_state(channel)) if channel is not None else ""
        body = ('{"instance":' + json.dumps(st.instance) + ',"last_seq":' + str(st.seq) + ',"in_flight":'
                + str(in_flight) + gen + ',"records":[' + ",".join(text for _, text in recs) + "]}")
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
        at = self.state.reset_at(channel)
        return _json({"channel": channel, "queued": len(q), "instance": self.state.instance,
                      "last_seq": self.state.seq, "generation": self.state.generation(channel),
                      "reset_at": at.isoformat() if at else None})

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
                msg = f"gatewaylens mock: cannot answer this request: {type(e).__name__}: {redact_text(str(e)[:200])}"
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
        found: set[str] = set()
        if text:
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
        if self.state.on_secrets is not None and (hfound or qfound or pfound or redacted):
            # An in-process owner (capture) learns the exact values, to scrub them from everything it
            # writes: a gateway that echoes its own upstream key in free text is caught that way too.
            self.state.on_secrets(hfound | qfound | pfound | found)
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
            # The redacted path: a key in the URL must not come back in the answer (nor in the record of it).
            return self._plain(404, {"error": {"message": f"gatewaylens mock: no route {request.method} {rec.path}",
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
    """Run the mock in-process (used by capture and tests).

    ``token``: the control token (default: a random one, see :attr:`token`); ``require_token=False``
    runs the control API open.  A host that is not loopback needs ``allow_remote=True``.
    ``shutdown_s`` bounds how long :meth:`stop` waits for requests still being answered (a
    scripted delay) before cancelling them; they are recorded as cut."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9999, *, record_file: Path | None = None,
                 latency_ms: float = 0.0, record: bool = True, max_records: int = DEFAULT_MAX_RECORDS,
                 log: Callable[[str], None] | None = None, on_secrets: Callable[[set[str]], None] | None = None,
                 token: str | None = None, require_token: bool = True, allow_remote: bool = False,
                 shutdown_s: float = 0.25) -> None:
        if not allow_remote and not is_loopback_host(host):
            raise ValueError(f"{host} is not a loopback address: binding it exposes the mock and its control API "
                             "beyond this machine; pass allow_remote=True (mock --allow-remote) to do it anyway")
        self.host, self.port = host, port
        self.shutdown_s = shutdown_s
        self.state = MockState(record_file=record_file, latency_ms=latency_ms, record=record,
                               max_records=max_records, log=log, on_secrets=on_secrets, token=token,
                               require_token=require_token)
        self.mock = MockApp(self.state)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token(self) -> str | None:
        """The control token (None when the mock runs open)."""
        return self.state.token

    @property
    def control_headers(self) -> dict[str, str]:
        """Headers a control call needs (``{"x-gwl-token": token}``, or none when open)."""
        return {TOKEN_HEADER: self.state.token} if self.state.token else {}

    async def start(self) -> None:
        # A short shutdown bound: stopping must not wait for a 100 s scripted delay (aiohttp's default
        # is 60 s, and it is waited twice: for the handlers, then per connection); handlers still
        # running are cancelled and their requests recorded as cut.
        self._runner = web.AppRunner(self.mock.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=self.shutdown_s)
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
