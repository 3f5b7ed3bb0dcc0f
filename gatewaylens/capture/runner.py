"""The capture engine: every case through every selected gateway, read back from the mock.

Design (see also the README's capture section):

* One asyncio worker per gateway, gateways concurrently; within a gateway one request at a time,
  so every record on the gateway's mock channel ``/ch/<gateway>`` between two exchanges belongs
  to the exchange in between.  Each worker reads only its own channel with ``since=<seq>``; the
  mock assigns ``seq`` when a record is complete, so a ``since`` reader never misses one.
* Before each exchange the worker posts the case's script with ``mode: "replace"`` (an empty step
  list when the case has none).  That clears whatever an earlier case left queued (a scripted 500
  the gateway never consumed) without ``/__mock/reset``, which would also delete the channel's
  records that a user may be inspecting.
* After the client response (or error) the worker polls the channel until no new record has
  arrived for ``settle`` seconds (bounded by ``settle_max``; and while the mock reports requests
  on the channel still ``in_flight``, if it does): every upstream call of the exchange, retries
  included, in order.  The mock stores a record before the gateway receives a non-stream answer
  and right after the last frame of a stream, so calls made before the gateway answered are
  there at the first poll; so polling stops as soon as the exchange has records and the mock
  reports none ``in_flight`` on the channel, and the settle time is only waited when nothing has
  been recorded yet (a gateway that answered without calling upstream, or a mock that does not
  report ``in_flight``).  Records that show up only after that (a gateway still retrying
  after the client timed out) are found by the next exchange (by their time when the mock is on
  this machine, else by a pre-check) and discarded with a note, never attributed to the wrong
  exchange.
* The mock's ``instance`` id is checked on every control call; a change (or ``last_seq`` going
  backwards) means the mock restarted: the affected exchange is marked ``mock_lost`` with no
  records attributed, and the channel is re-synced.  A mock that cannot be reached fails that
  gateway's worker fast.
* Isolation: every channel is leased before any traffic (a second capture on the same mock and
  gateway name is refused, exit 2) and read with the lease token.  A reset of the channel during
  an exchange (its reset generation changed, the reset time falls inside the exchange) or a record
  carrying another case's ``[gwl:<id>]`` marker marks the exchange ``disturbed``.
* A stop signal cancels the workers: the exchange in flight is written ``interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import ValidationError

from gatewaylens import __version__
from gatewaylens.capture.corpus import InputError, LoadedCorpus
from gatewaylens.capture.launch import LaunchContext, Launcher, LaunchError, free_port, make_workdir
from gatewaylens.capture.models import (
    Case,
    ClientFrame,
    ClientRequest,
    ClientResponse,
    Exchange,
    ExchangeError,
    GatewayInfo,
    GatewayProfile,
    Route,
    RunInfo,
    Timings,
    TurnRef,
)
from gatewaylens.capture.rundir import (
    ExchangeWriter,
    Scrubber,
    drop_interrupted,
    load_done,
    new_run_dir,
    point_latest,
    read_run_info,
    utc_stamp,
    write_run_info,
)
from gatewaylens.capture.secrets import (
    client_frame,
    collect_secrets,
    redact_record,
)
from gatewaylens.dialects import (
    Dialect,
    UpstreamKind,
    parse_json,
    redact_headers,
    redact_json,
    redact_raw_text,
    redact_url,
    redact_value,
)
from gatewaylens.errors import one_line
from gatewaylens.mock.models import RecordedExchange, ScriptStep
from gatewaylens.mock.server import TOKEN_HEADER
from gatewaylens.sse import SSEDecoder
from gatewaylens.turns import TurnInputs, Unresolved, answer_body, build_turn

#: Terminal events of a complete stream, per client dialect.
TERMINAL_EVENTS: dict[Dialect, set[str]] = {
    "chat": {"[DONE]"},
    "responses": {"response.completed", "response.failed", "response.incomplete"},
    "messages": {"message_stop", "error"},
}
ANTHROPIC_VERSION = "2023-06-01"
#: The case marker the corpus puts in each case's first user text (``[gwl:<case id>]``).
MARKER_RE = re.compile(r"\[gwl:([a-z0-9][a-z0-9._-]{0,99})\]")


def record_markers(rec: RecordedExchange) -> set[str]:
    """Case markers in an upstream record's body."""
    text = rec.body_text or ""
    return set(MARKER_RE.findall(text)) if "[gwl:" in text else set()


# =============================================================================================
# Options and plan
# =============================================================================================


@dataclass
class CaptureOptions:
    corpus: LoadedCorpus
    profiles: list[GatewayProfile]
    custom: set[str]
    mock_url: str = "http://127.0.0.1:9999"
    start_mock: bool = True
    launch: bool = False
    out: Path | None = None
    output_root: Path = Path("output")
    resume: bool = False
    cases_glob: str | None = None
    dialects: list[Dialect] | None = None
    stream: bool | None = None
    timeout_s: float = 60.0
    settle_s: float = 0.02
    settle_max_s: float = 2.0
    mock_retry_s: float = 3.0
    json_summary: bool = False
    #: start the selected built-ins as containers (docker-compose.yml services) via the Docker Engine API
    docker: bool = False
    #: the mock's URL as the gateways reach it (e.g. http://mock:9999 inside compose); default: mock_url
    channel_base: str | None = None
    #: the options as given on the command line (URLs redacted), stored in run.json
    recorded_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class WorkItem:
    case: Case
    upstream: UpstreamKind
    route: Route | None
    unsupported: str | None
    id: str

    def exchange_ids(self) -> list[str]:
        """One exchange per request: a conversation's turns are ``<id>/t1``, ``<id>/t2``..."""
        if not self.case.turns:
            return [self.id]
        return [f"{self.id}/t{n}" for n in range(1, len(self.case.turns) + 1)]


@dataclass
class GatewayTarget:
    profile: GatewayProfile
    base_url: str
    channel_url: str
    info: GatewayInfo
    custom: bool
    items: list[WorkItem] = field(default_factory=list)
    launcher: Launcher | None = None
    workdir: Path | None = None

    @property
    def name(self) -> str:
        return self.profile.name


@dataclass
class GatewayResult:
    name: str
    exchanges: list[Exchange] = field(default_factory=list)
    planned: int = 0
    aborted: str | None = None
    skipped: str | None = None
    not_run: str | None = None

    def summary(self) -> dict[str, Any]:
        ok = sum(1 for e in self.exchanges if e.status == "ok")
        err = sum(1 for e in self.exchanges if e.status == "error")
        uns = sum(1 for e in self.exchanges if e.status == "unsupported")
        lat = [e.timings.duration_ms for e in self.exchanges if e.timings and e.status != "unsupported"]
        return {
            "gateway": self.name,
            "exchanges": len(self.exchanges),
            "ok": ok,
            "errors": err,
            "unsupported": uns,
            "not_captured": max(0, self.planned - len(self.exchanges)) if not self.skipped else self.planned,
            "upstream_calls": sum(len(e.upstream_requests) for e in self.exchanges),
            "median_latency_ms": round(statistics.median(lat), 1) if lat else None,
            "skipped": self.skipped,
            "aborted": self.aborted,
            "not_run": self.not_run,
        }


def filter_cases(cases: Sequence[Case], glob: str | None, dialects: Sequence[Dialect] | None,
                 stream: bool | None) -> list[Case]:
    globs = [g.strip() for g in glob.split(",") if g.strip()] if glob else []
    out = []
    for c in cases:
        if globs and not any(fnmatchcase(c.id, g) for g in globs):
            continue
        if dialects and c.dialect not in dialects:
            continue
        if stream is not None and c.stream != stream:
            continue
        out.append(c)
    return out


def plan_items(profile: GatewayProfile, cases: Sequence[Case]) -> list[WorkItem]:
    """case x upstream x route, in corpus order; combos the gateway cannot do become 'unsupported'."""
    items: list[WorkItem] = []
    used: set[str] = set()

    def unique(base: str) -> str:
        ident, n = base, 2
        while ident in used:
            ident, n = f"{base}/{n}", n + 1
        used.add(ident)
        return ident

    for case in cases:
        for up in case.upstreams():
            if profile.upstream_only is not None and up != profile.upstream_only:
                continue  # not run: said once for the gateway (not_run_note), not as an exchange each
            base = f"{profile.name}/{case.id}/{up}"
            reason = profile.unsupported_reason(case.dialect, up)
            if reason:
                items.append(WorkItem(case, up, None, reason, unique(base)))
                continue
            for route in profile.route_for(case.dialect, up):
                suffix = route.variant or ("passthrough" if route.passthrough else "")
                items.append(WorkItem(case, up, route, None, unique(f"{base}/{suffix}" if suffix else base)))
    return items


def not_run_note(profile: GatewayProfile, cases: Sequence[Case]) -> str | None:
    """One line for the cases a gateway declared with one upstream kind does not run, or None."""
    kind = profile.upstream_only
    if kind is None:
        return None
    others = sorted({u for c in cases for u in c.upstreams() if u != kind})
    n = sum(1 for c in cases for u in c.upstreams() if u != kind)
    if not n:
        return None
    return (f"{n} case run(s) for an {'/'.join(others)} upstream: this gateway was declared with an {kind} upstream "
            f"(--upstream, or --gateway {profile.name}:KIND=URL)")


def channel_url(mock_url: str, name: str) -> str:
    return f"{mock_url.rstrip('/')}/ch/{name}"


def expand(value: str, ch_url: str, mock_url: str) -> str:
    return value.replace("{channel_url}", ch_url).replace("{mock_url}", mock_url.rstrip("/"))


def join_url(base: str, path: str) -> str:
    """``base`` (may carry a path prefix and a query) + route ``path``; the base's query is kept."""
    b = urlsplit(base)
    p = urlsplit(path)
    full_path = b.path.rstrip("/") + "/" + p.path.lstrip("/")
    query = "&".join(q for q in (b.query, p.query) if q)
    return urlunsplit((b.scheme, b.netloc, full_path, query, ""))


def client_headers(case: Case, profile: GatewayProfile, route: Route, ch_url: str, mock_url: str) -> dict[str, str]:
    """What an SDK client would send, then the case's headers, then the gateway's own (which win)."""
    h: dict[str, str] = {
        "content-type": "application/json",
        "accept": "text/event-stream" if case.stream else "application/json",
        "user-agent": f"gatewaylens/{__version__}",
    }
    if case.dialect == "messages":
        h["anthropic-version"] = ANTHROPIC_VERSION
    for src in (case.headers, profile.client_headers, route.headers):
        for k, v in src.items():
            h[k.lower()] = expand(v, ch_url, mock_url)
    return h


# =============================================================================================
# The mock's control API, one channel
# =============================================================================================


class MockError(Exception):
    """A control call to the mock failed; the gateway's worker stops (fail fast)."""


class MockRestarted(Exception):
    def __init__(self, old: str | None, new: str, last_seq: int) -> None:
        super().__init__(f"the mock restarted (instance {old} -> {new})")
        self.old, self.new, self.last_seq = old, new, last_seq


@dataclass
class LogPage:
    instance: str
    last_seq: int
    records: list[RecordedExchange]
    #: requests on the channel the mock is still answering, when the mock reports it
    in_flight: int | None = None


class ChannelBusy(MockError):
    """Another client holds the channel's lease: two captures must not share a channel."""


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


class _Generations:
    """What both channel kinds track about resets: the channel's reset generation as last seen,
    how many changes of it were seen, and when the newest reset happened."""

    generation: int | None = None
    resets: int = 0
    last_reset_at: datetime | None = None

    def observe(self, generation: Any, reset_at: Any) -> None:
        if generation is None:
            return
        try:
            g = int(generation)
        except (TypeError, ValueError):
            return
        if self.generation is not None and g != self.generation:
            self.resets += 1
            self.last_reset_at = _parse_time(reset_at)
        self.generation = g


class MockChannel(_Generations):
    """Reads one channel's records with ``since=<cursor>``; notices mock restarts and resets.

    The channel is leased (``POST /__mock/lease``) before any traffic: another capture asking for
    it is refused, and every control call carries the lease token (``x-gwl-token``).  A mock that
    restarted has forgotten the lease: it is taken again and the restart reported as before.
    """

    def __init__(self, client: httpx.AsyncClient, mock_url: str, channel: str, retry_s: float = 3.0,
                 holder: str = "capture", lease_ttl_s: float = 60.0) -> None:
        self.client = client
        self.mock_url = mock_url.rstrip("/")
        self.channel = channel
        self.retry_s = retry_s
        self.instance: str | None = None
        self.cursor = 0
        self.holder = holder
        self.lease_ttl_s = lease_ttl_s
        self.token: str | None = None
        #: the mock answered /__mock/lease (False: an old mock without leases, used unprotected)
        self.leased = False

    async def _request(self, method: str, op: str, **kw: Any) -> httpx.Response:
        url = f"{self.mock_url}/__mock/{op}"
        deadline = time.monotonic() + self.retry_s
        headers = {TOKEN_HEADER: self.token} if self.token else {}
        while True:
            try:
                return await self.client.request(method, url, headers=headers, **kw)
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as e:
                if time.monotonic() >= deadline:
                    raise MockError(f"mock control call {method} /__mock/{op} failed: {type(e).__name__}") from None
                await asyncio.sleep(0.1)
            except httpx.HTTPError as e:
                raise MockError(f"mock control call {method} /__mock/{op} failed: {type(e).__name__}") from None

    async def _call(self, method: str, op: str, **kw: Any) -> Any:
        """One control call.  Connection failures are retried briefly (a mock being restarted); a
        token the mock no longer knows (it restarted, or the lease lapsed) is replaced by a new lease."""
        r = await self._request(method, op, **kw)
        if r.status_code in (401, 403) and self.leased:
            await self.lease()
            r = await self._request(method, op, **kw)
        if r.status_code >= 300:
            raise MockError(f"mock control call {method} /__mock/{op} answered HTTP {r.status_code}: {one_line(r.text, 200)}")
        try:
            return r.json()
        except ValueError:
            raise MockError(f"mock control call {method} /__mock/{op} did not answer JSON") from None

    async def lease(self) -> None:
        """Take (or renew) this channel's lease.  Raises :class:`ChannelBusy` when another client has it."""
        r = await self._request("POST", "lease", params={"channel": self.channel},
                                json={"holder": self.holder, "ttl_s": self.lease_ttl_s})
        if r.status_code == 404 and not self.leased:
            return  # a mock without leases (an older build): used as before, unprotected
        if r.status_code == 409:
            data = parse_json(r.content)
            msg = data.get("error", {}).get("message") if isinstance(data, dict) else None
            raise ChannelBusy(one_line(str(msg or r.text), 300))
        if r.status_code >= 300:
            raise MockError(f"mock control call POST /__mock/lease answered HTTP {r.status_code}: {one_line(r.text, 200)}")
        data = parse_json(r.content)
        if not isinstance(data, dict) or not isinstance(data.get("token"), str):
            raise MockError("mock lease answer is malformed")
        self.token, self.leased = data["token"], True

    async def release(self) -> None:
        if self.leased and self.token:
            with contextlib.suppress(MockError, httpx.HTTPError):
                await self._request("DELETE", "lease", params={"channel": self.channel})
        self.leased = False

    async def sync(self) -> None:
        """Start reading after everything already on the mock."""
        data = await self._call("GET", "health")
        self.instance = str(data.get("instance", ""))
        self.cursor = int(data.get("last_seq", 0))
        gens = data.get("generations")
        self.generation = int(gens.get(self.channel, 0)) if isinstance(gens, dict) else None

    async def fetch(self) -> LogPage:
        """New records on this channel since the cursor; the cursor advances.  Raises :class:`MockRestarted`."""
        data = await self._call("GET", "log", params={"channel": self.channel, "since": str(self.cursor)})
        try:
            in_flight = data.get("in_flight")
            page = LogPage(instance=str(data["instance"]), last_seq=int(data["last_seq"]),
                           records=[redact_record(RecordedExchange.model_validate(r)) for r in data["records"]],
                           in_flight=int(in_flight) if in_flight is not None else None)
        except (KeyError, TypeError, ValueError, ValidationError) as e:
            raise MockError(f"mock log answer is malformed: {one_line(str(e), 160)}") from None
        if page.instance != self.instance or page.last_seq < self.cursor or any(
                r.instance and r.instance != page.instance for r in page.records):
            old = self.instance
            self.instance, self.cursor = page.instance, page.last_seq
            self.generation = data.get("generation")  # a new process counts from zero: not a reset
            raise MockRestarted(old, page.instance, page.last_seq)
        self.observe(data.get("generation"), data.get("reset_at"))
        page.records = sorted((r for r in page.records if r.seq > self.cursor), key=lambda r: r.seq)
        self.cursor = max(self.cursor, page.last_seq, *(r.seq for r in page.records))
        return page

    async def script(self, steps: list[Any]) -> bool:
        """Queue the steps (replacing any left over).  Returns True when the mock's answer carried its
        instance and ``last_seq`` and they were checked (raises :class:`MockRestarted` on a restart),
        False for a mock that does not report them."""
        data = await self._call("POST", "script", params={"channel": self.channel},
                                json={"steps": steps, "mode": "replace"})
        if not isinstance(data, dict) or "instance" not in data or "last_seq" not in data:
            return False
        try:
            instance, last_seq = str(data["instance"]), int(data["last_seq"])
        except (TypeError, ValueError):
            return False
        if instance != self.instance or last_seq < self.cursor:
            old = self.instance
            self.instance, self.cursor = instance, last_seq
            self.generation = data.get("generation")
            raise MockRestarted(old, instance, last_seq)
        self.observe(data.get("generation"), data.get("reset_at"))
        return True


class LocalMockChannel(_Generations):
    """The same reads as :class:`MockChannel`, straight from a mock this process started.

    When capture starts the mock in-process there is no need to ask it over HTTP: reading its
    state directly takes the control round trips out of every exchange (capture's overhead).
    The channel is leased all the same (without expiry), so a second capture reaching this mock
    over HTTP is refused.
    """

    def __init__(self, state: Any, channel: str, holder: str = "capture") -> None:
        self.state = state
        self.channel = channel
        self.instance: str | None = None
        self.cursor = 0
        self.holder = holder
        self.token: str | None = None

    async def lease(self) -> None:
        from gatewaylens.mock.server import LeaseBusy

        try:
            self.token = self.state.lease(self.channel, self.holder, ttl_s=None, token=self.token).token
        except LeaseBusy:
            cur = self.state.live_lease(self.channel)
            raise ChannelBusy(f"channel {self.channel!r} is in use by another client "
                              f"({cur.holder if cur else 'unknown'})") from None

    async def release(self) -> None:
        if self.token is not None:
            with contextlib.suppress(Exception):
                self.state.release(self.channel, self.token)
            self.token = None

    async def sync(self) -> None:
        self.instance = str(self.state.instance)
        self.cursor = int(self.state.seq)
        self.generation = int(self.state.generation(self.channel))

    def _observe_state(self) -> None:
        at = self.state.reset_at(self.channel)
        self.observe(self.state.generation(self.channel), at.isoformat() if at else None)

    async def fetch(self) -> LogPage:
        queue = self.state.records.get(self.channel, ())
        newest: list[str] = []
        for seq, text in reversed(queue):  # newest first: stop at the cursor, not at the oldest record
            if seq <= self.cursor:
                break
            newest.append(text)
        records = [RecordedExchange.model_validate_json(text) for text in reversed(newest)]
        page = LogPage(instance=str(self.state.instance), last_seq=int(self.state.seq), records=records,
                       in_flight=int(self.state.in_flight.get(self.channel, 0)))
        self.cursor = max(self.cursor, page.last_seq)
        self._observe_state()
        return page

    async def script(self, steps: list[Any]) -> bool:
        from gatewaylens.mock.models import Script

        queue = self.state.scripts.setdefault(self.channel, deque())
        queue.clear()
        queue.extend(Script.model_validate({"steps": steps}).steps)
        self._observe_state()
        return True


# =============================================================================================
# One exchange
# =============================================================================================


@dataclass
class _Partial:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    frames: list[ClientFrame] = field(default_factory=list)
    sse: bool = False
    body_bytes: bytes | None = None
    first_byte_ms: float | None = None
    unterminated_tail: bool = False

    def response(self, requested_stream: bool) -> ClientResponse | None:
        if self.status is None:
            return None
        body: Any = None
        text: str | None = None
        if self.body_bytes is not None:
            # The gateway's answer is redacted like everything else (a gateway may echo a key).
            body = parse_json(self.body_bytes)
            if body is not None:
                body = redact_json(body)
            elif self.body_bytes:
                text = redact_raw_text(self.body_bytes.decode("utf-8", errors="replace"))
        return ClientResponse(status=self.status, headers=self.headers, body=body, text=text,
                              frames=self.frames if self.sse else None, stream=self.sse)


def _frame_kind(frame: ClientFrame) -> str | None:
    if frame.event:
        return frame.event
    if frame.data.strip() == "[DONE]":
        return "[DONE]"
    if isinstance(frame.json_data, dict) and isinstance(frame.json_data.get("type"), str):
        return str(frame.json_data["type"])
    return None


def _cuts_stream(script: list[ScriptStep] | None) -> bool:
    return any(s.cut_after is not None for s in script or [])


# =============================================================================================
# Conversations
# =============================================================================================


@dataclass
class PlannedTurn:
    """One request of a work item: the only one of a plain case, or turn ``number`` of ``total``."""

    item_id: str
    number: int
    total: int
    template: dict[str, Any]
    script: list[ScriptStep] | None

    @property
    def conversation(self) -> bool:
        return self.total > 1

    @property
    def exchange_id(self) -> str:
        return f"{self.item_id}/t{self.number}" if self.conversation else self.item_id

    def stamp(self, ex: Exchange) -> None:
        if self.conversation:
            ex.conversation, ex.turn, ex.turns = self.item_id, self.number, self.total


def conversation_turns(item: WorkItem) -> list[PlannedTurn]:
    case = item.case
    if not case.turns:
        return [PlannedTurn(item.id, 1, 1, case.body, case.script)]
    n = len(case.turns)
    return [PlannedTurn(item.id, i + 1, n, t.body, t.script) for i, t in enumerate(case.turns)]


class TurnHistory:
    """What the client of one conversation sent and ended up holding, turn by turn."""

    def __init__(self) -> None:
        self.inputs = TurnInputs()

    def add(self, ex: Exchange) -> None:
        sent = ex.client_request.body if ex.client_request is not None else None
        self.inputs.sent.append(sent)
        self.inputs.answers.append(client_answer(ex))


def client_answer(ex: Exchange) -> Any | None:
    """The answer as the client holds it after the exchange: the JSON body of a 2xx answer, or its
    stream reassembled (``None`` for an error answer or none at all)."""
    cr = ex.client_response
    if cr is None or not 200 <= cr.status < 300:
        return None
    frames = [(f.event, f.json_data if f.json_data is not None else f.data) for f in cr.frames] if cr.frames is not None else None
    return answer_body(ex.dialect, cr.body, frames)


async def _send(client: httpx.AsyncClient, url: str, headers: dict[str, str], content: bytes,
                part: _Partial, t0: float) -> None:
    """Send the client request and read the whole answer into ``part`` (kept on errors)."""
    async with client.stream("POST", url, content=content, headers=headers) as resp:
        part.status = resp.status_code
        part.headers = redact_headers(resp.headers.multi_items())
        ctype = resp.headers.get("content-type", "").partition(";")[0].strip().lower()
        if ctype == "text/event-stream":
            part.sse = True
            decoder = SSEDecoder()
            pending = False
            async for line in resp.aiter_lines():
                line = line.rstrip("\r\n")
                pending = bool(line) or pending
                sse = decoder.decode(line)
                if sse is None:
                    continue
                pending = False
                offset = round((time.perf_counter() - t0) * 1000, 3)
                if part.first_byte_ms is None:
                    part.first_byte_ms = offset
                part.frames.append(client_frame(sse.event if sse.event != "message" else None, sse.data, offset))
            if pending:
                # The stream ended inside an event (no blank line): keep it, flagged.
                sse = decoder.decode("")
                if sse is not None:
                    part.frames.append(client_frame(sse.event if sse.event != "message" else None, sse.data,
                                                    round((time.perf_counter() - t0) * 1000, 3)))
                    part.unterminated_tail = True
        else:
            part.first_byte_ms = round((time.perf_counter() - t0) * 1000, 3)
            chunks: list[bytes] = []
            try:
                async for chunk in resp.aiter_bytes():  # content-encoding undone, like a client
                    chunks.append(chunk)
            finally:
                part.body_bytes = b"".join(chunks)


class Capturer:
    """Captures the exchanges of one gateway, one at a time."""

    def __init__(self, target: GatewayTarget, channel: MockChannel | LocalMockChannel, client: httpx.AsyncClient,
                 opts: CaptureOptions) -> None:
        self.t = target
        self.ch = channel
        #: the channel's script queue may hold steps (unknown at start, or left by a scripted case)
        self.script_dirty = True
        self.client = client
        self.opts = opts
        #: the mock runs on this machine, so its record times and ours share one clock
        self.same_clock = is_loopback(opts.mock_url)
        #: resets of the channel already accounted for, and the exchange cut short by a stop signal
        self._resets_seen = 0
        self.interrupted: Exchange | None = None
        self._case_markers: dict[str, set[str]] = {}

    def unsupported(self, item: WorkItem, turn: PlannedTurn | None = None, reason: str | None = None) -> Exchange:
        ex = Exchange(id=turn.exchange_id if turn else item.id, case_id=item.case.id, gateway=self.t.name,
                      dialect=item.case.dialect, stream=item.case.stream, upstream=item.upstream,
                      status="unsupported", unsupported_reason=reason or item.unsupported)
        if item.route is not None:
            ex.variant, ex.passthrough = item.route.variant, item.route.passthrough
        if turn is not None:
            turn.stamp(ex)
        return ex

    async def capture(self, item: WorkItem, turn: PlannedTurn | None = None,
                      history: TurnHistory | None = None) -> Exchange:
        """One exchange (one turn of a conversation).  Raises :class:`MockError` when the mock cannot
        be used (before sending)."""
        case, route = item.case, item.route
        assert route is not None
        turn = turn or conversation_turns(item)[0]
        body_template: dict[str, Any] = case.body
        built: list[TurnRef] = []
        if turn.number > 1:
            # A later turn is built from what the client actually received on the earlier ones.
            try:
                body_template, resolved = build_turn(turn.template, turn.number, (history or TurnHistory()).inputs)
            except Unresolved as e:
                return self.unsupported(item, turn, one_line(
                    f"turn {turn.number} not sent: its template refers to what the gateway did not give the "
                    f"client: {e}", 400))
            built = [TurnRef(at=r.at, ref=r.ref, how=r.how, value=r.value) for r in resolved]
        ex = Exchange(id=turn.exchange_id, case_id=case.id, gateway=self.t.name, dialect=case.dialect, stream=case.stream,
                      upstream=item.upstream, variant=route.variant, passthrough=route.passthrough, built_from=built)
        turn.stamp(ex)
        # 1. This case's (turn's) script (replace: nothing left over from an earlier case).  The mock's
        #    answer carries its instance and last_seq, so a mock restarted in between is noticed here.
        steps = [s.model_dump(mode="json", exclude_defaults=True) for s in turn.script or []]
        checked = False
        if steps or self.script_dirty or not self.same_clock:
            try:
                checked = await self.ch.script(steps)
            except MockRestarted as e:
                ex.notes.append(f"{e}; channel re-synced before this exchange")
                checked = True
            self.script_dirty = bool(steps)
        else:
            # Nothing scripted now or before: the queue is empty and, the mock being on this machine,
            # late records are discarded by their time in ``_collect``; a restart shows up there too.
            checked = True
        # 2. Pre-check: late records of the previous exchange.  With the mock on this machine (one
        #    clock) ``_collect`` discards records older than this request by their time, so this extra
        #    round trip is only needed for a remote mock, or one that did not report its state above.
        if not (checked and self.same_clock):
            try:
                page = await self.ch.fetch()
                if page.records:
                    seqs = ", ".join(str(r.seq) for r in page.records[:10])
                    ex.notes.append(f"discarded {len(page.records)} upstream record(s) (seq {seqs}) that reached the "
                                    "mock after the previous exchange was written; not attributed")
            except MockRestarted as e:
                ex.notes.append(f"{e}; channel re-synced before this exchange")
        # 3. The client request.
        ch_url = self.t.channel_url
        body = dict(body_template)
        model = next((route.tag_models[t] for t in case.tags if t in route.tag_models), route.model)
        if model is not None:
            body["model"] = model
        # What analyze needs of the profile: its on-purpose model substitution and header rules.
        ex.expected_model = self.t.profile.model_aliases.get(str(body.get("model")))
        ex.header_policy = list(self.t.profile.header_policy)
        url = join_url(self.t.base_url, expand(route.path, ch_url, self.opts.mock_url))
        headers = client_headers(case, self.t.profile, route, ch_url, self.opts.mock_url)
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        ex.client_request = ClientRequest(url=redact_url(url), headers=redact_headers(headers), body=redact_json(body))
        part = _Partial()
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        # Resets of the channel seen so far (a reset between two exchanges loses nothing).
        if self.ch.resets > self._resets_seen:
            ex.notes.append("the mock channel was reset by another client before this exchange (nothing of it lost)")
        self._resets_seen = resets0 = self.ch.resets
        self.interrupted = None
        try:
            await self._send_and_collect(ex, case, url, headers, content, part, started, t0, turn.script)
        except asyncio.CancelledError:
            self.interrupted = self._interrupted(ex, case, part, started, t0)
            raise
        self._check_disturbed(ex, case, started, resets0)
        self._resets_seen = self.ch.resets
        return ex

    async def _send_and_collect(self, ex: Exchange, case: Case, url: str, headers: dict[str, str], content: bytes,
                                part: _Partial, started: datetime, t0: float,
                                script: list[ScriptStep] | None = None) -> None:
        """Steps 3 and 4 of :meth:`capture`: the client request and its upstream records (``script``:
        the steps the mock was given for this request)."""
        err: ExchangeError | None = None
        try:
            async with asyncio.timeout(self.opts.timeout_s):
                await _send(self.client, url, headers, content, part, t0)
        except TimeoutError:
            err = ExchangeError(kind="timeout", message=f"no complete answer within {self.opts.timeout_s:g}s")
        except httpx.TimeoutException as e:
            err = ExchangeError(kind="timeout", message=f"{type(e).__name__} after {self.opts.timeout_s:g}s")
        except httpx.ConnectError as e:
            err = ExchangeError(kind="refused", message=f"cannot connect to the gateway: {self._msg(e, url)}")
        except (httpx.RemoteProtocolError, httpx.ReadError) as e:
            kind = "broken_stream" if part.status is not None else "protocol"
            what = "the answer broke off mid-way" if part.status is not None else "the gateway closed the connection without a valid HTTP answer"
            err = ExchangeError(kind=kind, message=f"{what}: {self._msg(e, url)}")
        except httpx.HTTPError as e:
            err = ExchangeError(kind="protocol", message=f"{type(e).__name__}: {self._msg(e, url)}")
        duration = round((time.perf_counter() - t0) * 1000, 3)
        ex.timings = Timings(started=started, duration_ms=duration, first_byte_ms=part.first_byte_ms)
        ex.client_response = part.response(case.stream)
        if part.unterminated_tail:
            ex.notes.append("the stream ended inside an event (no terminating blank line); last frame kept")
        if err is None and part.status is not None and part.status >= 400:
            # A gateway's 4xx/5xx answer is data: captured fine, described in `error`.
            err = ExchangeError(kind="http", message=f"HTTP {part.status}")
        if err is None and part.sse:
            kinds = {_frame_kind(f) for f in part.frames}
            if not kinds & TERMINAL_EVENTS[case.dialect]:
                ex.notes.append(f"the stream ended without a terminal event ({' / '.join(sorted(TERMINAL_EVENTS[case.dialect]))})")
        elif err is None and case.stream and part.status is not None and part.status < 300:
            ex.notes.append("a stream was requested but the gateway answered without text/event-stream")
        if err is not None:
            ex.error = err
            expected_cut = err.kind == "broken_stream" and _cuts_stream(script)
            if err.kind != "http" and not expected_cut:
                ex.status = "error"
            if expected_cut:
                ex.notes.append("broken stream expected: the case scripts an upstream stream cut")
        # 4. Everything the gateway sent upstream for this request, in order.
        try:
            ex.upstream_requests = await self._collect(started, ex.notes)
        except MockRestarted as e:
            ex.status = "error"
            ex.upstream_requests = []
            prev = f" (was: {ex.error.kind}: {ex.error.message})" if ex.error else ""
            ex.error = ExchangeError(kind="mock_lost", message=f"{e} during this exchange: its upstream records are lost; "
                                     f"none attributed{prev}")
        except MockError as e:
            ex.status = "error"
            ex.error = ExchangeError(kind="mock_lost", message=f"{e}; upstream records of this exchange unknown")
            raise _Aborted(ex, str(e)) from None

    def _interrupted(self, ex: Exchange, case: Case, part: _Partial, started: datetime, t0: float) -> Exchange:
        """The exchange in flight when capture was stopped: kept, marked ``interrupted``."""
        ex.timings = Timings(started=started, duration_ms=round((time.perf_counter() - t0) * 1000, 3),
                             first_byte_ms=part.first_byte_ms)
        if ex.client_response is None:
            ex.client_response = part.response(case.stream)
        prev = f" (was: {ex.error.kind}: {ex.error.message})" if ex.error else ""
        ex.status = "error"
        ex.error = ExchangeError(kind="interrupted", message="capture was stopped (SIGINT/SIGTERM) while this exchange "
                                 f"was in flight; its answer and upstream records are incomplete{prev}")
        return ex

    def _check_disturbed(self, ex: Exchange, case: Case, started: datetime, resets0: int) -> None:
        """Mark the exchange when another client disturbed its channel: a reset during the exchange
        (its records may be gone), or records carrying another case's marker (someone else's traffic)."""
        problems: list[str] = []
        expected = self._markers(case)
        foreign = [r for r in ex.upstream_requests if (m := record_markers(r)) and not m & expected]
        if foreign:
            ex.upstream_requests = [r for r in ex.upstream_requests if r not in foreign]
            shown = ", ".join(f"seq {r.seq} [gwl:{sorted(record_markers(r))[0]}]" for r in foreign[:5])
            problems.append(f"{len(foreign)} upstream record(s) on channel {self.t.name!r} carry another case's marker "
                            f"({shown}): another client is sending on this channel; not attributed")
        if self.ch.resets > resets0:
            at = self.ch.last_reset_at
            if self.same_clock and at is not None and at < started:
                ex.notes.append("the mock channel was reset by another client just before this exchange (nothing of it lost)")
            else:
                problems.append(f"the mock channel {self.t.name!r} was reset by another client during this exchange "
                                f"(reset generation now {self.ch.generation}): its upstream records may be lost")
        if problems:
            prev = f" (was: {ex.error.kind}: {ex.error.message})" if ex.error else ""
            ex.status = "error"
            ex.error = ExchangeError(kind="disturbed", message="; ".join(problems) + prev)

    def _markers(self, case: Case) -> set[str]:
        got = self._case_markers.get(case.id)
        if got is None:
            got = self._case_markers[case.id] = {case.id, *MARKER_RE.findall(json.dumps(case.body, ensure_ascii=False))}
        return got

    async def _collect(self, sent: datetime, notes: list[str]) -> list[RecordedExchange]:
        """Poll the channel until it has been quiet for ``settle_s`` (bounded by ``settle_max_s``).

        With the mock on this machine (one clock), a record whose request reached the mock
        before this exchange's request was sent cannot belong to it: such a late record of an
        earlier exchange is discarded with a note instead of being attributed here.
        """
        got: list[RecordedExchange] = []
        start = time.monotonic()
        last_new = start
        # Poll fast at first (a stream's record lands a moment after its last frame), then back
        # off to the settle interval: most exchanges are complete at the first or second read.
        pause = 0.001
        while True:
            page = await self.ch.fetch()
            now = time.monotonic()
            if page.records:
                for r in page.records:
                    arrived = r.time if r.time.tzinfo else r.time.replace(tzinfo=UTC)
                    if self.same_clock and arrived < sent:
                        notes.append(f"discarded upstream record seq {r.seq}: it reached the mock at "
                                     f"{r.time.isoformat()}, before this request was sent (late call of an earlier exchange)")
                    else:
                        got.append(r)
                last_new = now
            if now - start >= self.opts.settle_max_s:
                return got
            # The mock stores a record before the gateway gets a non-stream answer, and right after
            # the last frame of a stream (``in_flight`` counts the requests not stored yet).  So once
            # the client has its answer, this exchange has records and none is in flight, every call
            # the gateway made before answering is here: no need to wait ``settle_s``.  (A call made
            # after the answer is left to the next exchange's checks, which discard it with a note.)
            if got and page.in_flight == 0:
                return got
            # A request the mock is still answering is recorded when its answer is complete.
            if now - last_new >= self.opts.settle_s and not page.in_flight:
                return got
            await asyncio.sleep(min(pause, 0.02, self.opts.settle_s))
            pause *= 2

    def _msg(self, e: Exception, url: str) -> str:
        text = str(e) or type(e).__name__
        return one_line(redact_value(text.replace(url, redact_url(url))), 240)


class _Aborted(Exception):
    """The mock failed after the request was sent: keep the exchange, stop the worker."""

    def __init__(self, ex: Exchange, reason: str) -> None:
        super().__init__(reason)
        self.ex, self.reason = ex, reason


# =============================================================================================
# Terminal
# =============================================================================================


class Reporter:
    """Progress per gateway on stderr (rich bars on a TTY, plain lines otherwise)."""

    def __init__(self, scrub: Scrubber, stream: TextIO | None = None) -> None:
        from rich.console import Console

        self.scrub = scrub
        self.stream = stream or sys.stderr
        self.console = Console(file=self.stream, highlight=False, soft_wrap=True)
        self.tty = self.console.is_terminal
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._done: dict[str, int] = {}
        self._total: dict[str, int] = {}

    def line(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(self.scrub(text), markup=False, highlight=False)
        else:
            print(self.scrub(text), file=self.stream, flush=True)

    def start(self, totals: dict[str, int]) -> None:
        self._total = dict(totals)
        self._done = dict.fromkeys(totals, 0)
        if not self.tty:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("{task.fields[last]}"), console=self.console,
                                  transient=False)
        for name, total in totals.items():
            self._tasks[name] = self._progress.add_task(name, total=total, last="")
        self._progress.start()

    def advance(self, gateway: str, ex: Exchange) -> None:
        self._done[gateway] = self._done.get(gateway, 0) + 1
        state = ex.status if ex.status != "ok" or not ex.error else f"ok ({ex.error.kind})"
        if ex.status == "error" and ex.error:
            state = f"error {ex.error.kind}: {ex.error.message}"
        lat = f" {ex.timings.duration_ms:.0f}ms" if ex.timings else ""
        short = ex.id.split("/", 1)[1] if "/" in ex.id else ex.id
        if self._progress is not None:
            self._progress.update(self._tasks[gateway], advance=1, last=self.scrub(one_line(f"{short} {state}", 60)))
            if ex.status == "error":
                self.line(f"{gateway}: {short}: {state}")
        else:
            self.line(f"[{gateway}] {self._done[gateway]}/{self._total.get(gateway, 0)} {short} {state}{lat}")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def summary_table(rows: list[dict[str, Any]], stream: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    # "captured" / "capture failed": what happened to the exchanges (analyze's table counts error
    # *findings*, a different thing, under other words); a skipped gateway says why, not "not captured".
    table = Table(title="capture summary")
    for col in ("gateway", "captured", "capture failed", "unsupported route", "not captured", "upstream calls",
                "median latency"):
        table.add_column(col, justify="left" if col == "gateway" else "right")
    notes: list[str] = []
    for r in rows:
        if r["skipped"]:
            table.add_row(r["gateway"], "skipped", "—", "—", "—", "—", "—")
            notes.append(f"{r['gateway']}: skipped: {r['skipped']}")
            continue
        lat = f"{r['median_latency_ms']:.1f} ms" if r["median_latency_ms"] is not None else "-"
        name = r["gateway"] + (" (stopped)" if r["aborted"] else "")
        table.add_row(name, str(r["ok"]), str(r["errors"]), str(r["unsupported"]), str(r["not_captured"]),
                      str(r["upstream_calls"]), lat)
        if r["aborted"]:
            notes.append(f"{r['gateway']}: stopped: {r['aborted']}")
        if r.get("not_run"):
            notes.append(f"{r['gateway']}: not run: {r['not_run']}")
    console = Console(file=stream, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(file=stream, highlight=False, width=120, soft_wrap=True)
    console.print(table)
    for n in notes:
        console.print(n, markup=False)


# =============================================================================================
# Mock and gateway lifecycle
# =============================================================================================


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def ensure_mock(url: str, allow_start: bool, say: Callable[[str], None], scrub: Scrubber | None = None) -> Any:
    """Use the mock at ``url``, or start one in-process when nothing answers on a loopback URL.

    Returns the started ``MockServer`` (to stop at the end) or None.
    """
    health = f"{url.rstrip('/')}/__mock/health"
    async with httpx.AsyncClient(timeout=3.0, trust_env=False) as c:
        try:
            r = await c.get(health)
        except httpx.ConnectError:
            r = None
        except httpx.HTTPError as e:
            raise InputError(f"--mock {redact_url(url)}: no usable answer ({type(e).__name__})") from None
    if r is not None:
        data = parse_json(r.content)
        if r.status_code == 200 and isinstance(data, dict) and "instance" in data and "last_seq" in data:
            say(f"mock: using {redact_url(url)} (instance {data['instance']})")
            return None
        raise InputError(f"--mock {redact_url(url)}: something answers there but it is not the gatewaylens mock "
                         f"(GET /__mock/health -> HTTP {r.status_code})")
    if not allow_start:
        raise InputError(f"--mock {redact_url(url)}: nothing answers there (--no-start-mock given); start it with "
                         f"`mock --port {urlsplit(url).port or 80}`")
    if not is_loopback(url):
        raise InputError(f"--mock {redact_url(url)}: nothing answers there, and capture only starts a mock on loopback")
    parts = urlsplit(url)
    if parts.path.strip("/"):
        raise InputError(f"--mock {redact_url(url)}: give the mock's base URL without a path")
    from gatewaylens.mock.server import MockServer

    def learn(found: set[str]) -> None:
        # The exact values the mock redacted are scrubbed from everything capture writes or prints.
        if scrub is not None:
            for secret in found:
                scrub.add_credential(secret)

    # shutdown_s: when the run ends (or is stopped) nothing more is read from this mock, so requests
    # it still holds (a scripted delay, a gateway retrying late) are cut at once rather than awaited.
    server = MockServer(parts.hostname or "127.0.0.1", parts.port or 80, on_secrets=learn if scrub is not None else None,
                        shutdown_s=0.1)
    try:
        await server.start()
    except OSError as e:
        with contextlib.suppress(Exception):
            await server.stop()
        raise InputError(f"--mock {redact_url(url)}: cannot start the mock there: {e.strerror or e}") from None
    say(f"mock: started in-process at {url.rstrip('/')} (instance {server.state.instance}); stops with this run")
    return server


async def launch_one(t: GatewayTarget, mock_url: str, say: Callable[[str], None], scrub: Scrubber | None = None) -> None:
    """Start one built-in gateway as a local process; on failure mark it skipped with one line why.

    Every credential the launcher handed the gateway (environment, generated config, admin API) is
    registered with ``scrub`` before anything about the launch is printed or written."""
    from gatewaylens.capture import gateways

    name = t.profile.launcher
    cls = gateways.LAUNCHERS.get(name) if name else None
    if cls is None:
        t.info.skipped = "no local launcher for this gateway" + (f" (launcher {name!r} not found)" if name else "")
        return
    launcher = cls()
    try:
        reason = await asyncio.to_thread(launcher.available)
    except Exception as e:  # a launcher's probe must never take the run down
        reason = f"availability check failed: {one_line(str(e), 160)}"
    if reason:
        t.info.skipped = one_line(reason, 600)
        return
    t.workdir = make_workdir(t.name)
    ctx = LaunchContext(channel_url=t.channel_url, mock_url=mock_url.rstrip("/"), port=free_port(), workdir=t.workdir)
    t.launcher = launcher
    bound = float(getattr(launcher, "ready_timeout_s", 60.0)) + 15.0
    try:
        try:
            launched = await asyncio.wait_for(launcher.start(ctx), bound)
        finally:
            if scrub is not None:
                for secret in launcher.secrets:
                    scrub.add_credential(secret)
    except (LaunchError, TimeoutError, OSError) as e:
        msg = str(e) if isinstance(e, LaunchError) else (f"not ready within {bound:.0f}s" if isinstance(e, TimeoutError)
                                                          else f"cannot start: {e}")
        t.info.skipped = one_line(redact_value(msg), 300)
        await stop_one(t)
        return
    t.base_url = launched.base_url
    t.info.base_url = redact_url(launched.base_url)
    t.info.launched = "local"
    version = launched.version
    if version is None:
        with contextlib.suppress(Exception):
            version = await asyncio.to_thread(launcher.version)
    t.info.version = version or t.profile.version
    t.info.build = launched.build
    say(f"{t.name}: launched at {t.info.base_url}" + (f" (version {t.info.version})" if t.info.version else ""))


async def docker_one(docker_gws: Any, t: GatewayTarget, run_id: str, say: Callable[[str], None],
                     scrub: Scrubber | None = None) -> None:
    """Start one built-in gateway's compose service as a container; on failure mark it skipped."""
    from gatewaylens.capture.docker_launch import DockerUnavailable

    if scrub is not None:
        with contextlib.suppress(Exception):
            for secret in docker_gws.secrets(t.name):
                scrub.add_credential(secret)

    try:
        base = await docker_gws.start(t.name, run_id)
    except DockerUnavailable as e:
        t.info.skipped = one_line(redact_value(str(e)), 300)
        return
    except Exception as e:  # an engine error for one gateway must not stop the others
        t.info.skipped = one_line(redact_value(f"docker: {type(e).__name__}: {e}"), 300)
        return
    t.base_url = base
    t.info.base_url = redact_url(base)
    t.info.launched = "docker"
    say(f"{t.name}: container up at {t.info.base_url}")


async def stop_one(t: GatewayTarget) -> None:
    if t.launcher is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(t.launcher.stop(), 30)
        t.launcher = None
    if t.workdir is not None:
        shutil.rmtree(t.workdir, ignore_errors=True)
        t.workdir = None


# =============================================================================================
# The run
# =============================================================================================


@dataclass
class RunOutcome:
    exit_code: int
    run_dir: Path
    summary: dict[str, Any]


async def _worker(t: GatewayTarget, opts: CaptureOptions, done: dict[str, Exchange], writer: ExchangeWriter,
                  reporter: Reporter, result: GatewayResult, ch: MockChannel | LocalMockChannel) -> None:
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=2)
    timeout = httpx.Timeout(opts.timeout_s)
    async with httpx.AsyncClient(timeout=timeout, trust_env=False, limits=limits) as client:
        cap = Capturer(t, ch, client, opts)
        todo = [i for i in t.items if not all(x in done for x in i.exchange_ids())]
        try:
            await ch.sync()
        except MockError as e:
            result.aborted = str(e)
            reporter.line(f"{t.name}: stopped: {e}")
            return

        def keep(ex: Exchange) -> None:
            writer.write(ex)
            result.exchanges.append(ex)
            reporter.advance(t.name, ex)

        for item in todo:
            # The turns of one conversation go in order through this one worker (they build on each
            # other); conversations of different gateways run concurrently, like every exchange.
            history = TurnHistory()
            for turn in conversation_turns(item):
                ex_id = turn.exchange_id
                if ex_id in done:  # resumed: a finished turn is kept, and later turns build on it
                    history.add(done[ex_id])
                    continue
                if item.unsupported is not None:
                    ex = cap.unsupported(item, turn)
                else:
                    try:
                        ex = await cap.capture(item, turn, history)
                    except asyncio.CancelledError:
                        # Ctrl-C / SIGTERM: the exchange in flight is kept, marked interrupted (--resume redoes it).
                        if cap.interrupted is not None:
                            keep(cap.interrupted)
                        raise
                    except _Aborted as a:
                        keep(a.ex)
                        result.aborted = a.reason
                        reporter.line(f"{t.name}: stopped: {a.reason}")
                        return
                    except MockError as e:
                        result.aborted = str(e)
                        reporter.line(f"{t.name}: stopped before {ex_id}: {e}")
                        return
                    except Exception as e:  # a bug must not lose the other exchanges
                        ex = Exchange(id=ex_id, case_id=item.case.id, gateway=t.name, dialect=item.case.dialect,
                                      stream=item.case.stream, upstream=item.upstream, status="error",
                                      error=ExchangeError(kind="internal", message=one_line(redact_value(f"{type(e).__name__}: {e}"), 300)))
                        turn.stamp(ex)
                history.add(ex)
                keep(ex)


async def _renew_leases(channels: Sequence[MockChannel | LocalMockChannel], say: Callable[[str], None]) -> None:
    """Keep the leases of a mock in another process alive through long exchanges (a lease lapses
    after its ttl without a call carrying its token)."""
    lost: set[str] = set()
    while True:
        await asyncio.sleep(min(c.lease_ttl_s for c in channels if isinstance(c, MockChannel)) / 3
                            if any(isinstance(c, MockChannel) for c in channels) else 3600)
        for c in channels:
            if not isinstance(c, MockChannel) or not c.leased:
                continue
            try:
                await c.lease()
            except ChannelBusy as e:
                if c.channel not in lost:
                    lost.add(c.channel)
                    say(f"warning: {c.channel}: the channel's lease was lost to another client: {e}")
            except MockError:
                pass  # the workers report an unreachable mock themselves


async def run_capture(opts: CaptureOptions, say: Callable[[str], None] | None = None,
                      stdout: TextIO | None = None, *, progress: TextIO | None = None,
                      signals: bool = True) -> RunOutcome:
    """Everything after validated input: mock, run dir, launches, workers, summary, cleanup.

    ``progress``: where progress lines go (default stderr); ``signals=False``: install no
    SIGINT/SIGTERM handlers (library use, see :func:`gatewaylens.capture`)."""
    stdout = stdout or sys.stdout
    scrub = Scrubber()
    cases = filter_cases(opts.corpus.corpus.cases, opts.cases_glob, opts.dialects, opts.stream)
    if not cases:
        raise InputError("no case matches the filters (--cases / --dialects / --stream)")
    collect_secrets(scrub, opts.profiles, cases, opts.mock_url)
    reporter = Reporter(scrub, progress)
    out = say or reporter.line

    # Output location is checked before any traffic; the directory is created once the mock is up.
    if opts.resume and opts.out is None:
        raise InputError("--resume needs --out DIR (the run directory to complete)")
    done: list[Exchange] = []
    previous: RunInfo | None = None
    if opts.out is not None:
        if opts.out.exists() and not opts.out.is_dir():
            raise InputError(f"--out {opts.out}: exists and is not a directory")
        holds = (opts.out / "run.json").exists() or (opts.out / "exchanges.jsonl").exists()
        if holds and not opts.resume:
            raise InputError(f"--out {opts.out}: already holds a run; use --resume to complete it, or another directory")
        if opts.resume and holds:
            previous = read_run_info(opts.out)
            done, redo = drop_interrupted(opts.out, load_done(opts.out))
            if redo:
                out(f"resume: {redo} exchange(s) interrupted by the earlier stop will be captured again")
    run_dir = opts.out or opts.output_root / "runs" / "(not created)"
    done_by_id = {e.id: e for e in done}
    done_ids = set(done_by_id)

    targets: list[GatewayTarget] = []
    for p in opts.profiles:
        ch = channel_url(opts.channel_base or opts.mock_url, p.name)
        info = GatewayInfo(name=p.name, family=p.family or p.name, base_url=redact_url(p.base_url), channel_url=ch,
                           version=p.version, not_run=not_run_note(p, cases))
        targets.append(GatewayTarget(profile=p, base_url=p.base_url, channel_url=ch, info=info,
                                     custom=p.name in opts.custom, items=plan_items(p, cases)))

    started = datetime.now(UTC)
    if previous is not None:
        info_run = previous
        if previous.corpus_sha256 != opts.corpus.sha256:
            out(f"warning: the corpus changed since this run started (sha256 {previous.corpus_sha256[:12]} -> "
                f"{opts.corpus.sha256[:12]}); exchanges already captured are kept as they are")
        info_run.options.setdefault("resumed", []).append(started.isoformat())
        info_run.interrupted = False
        info_run.finished = None
    else:
        info_run = RunInfo(id=opts.out.name if opts.out else utc_stamp(started), started=started, tool_version=__version__,
                           corpus_path=str(opts.corpus.path), corpus_sha256=opts.corpus.sha256,
                           mock_url=redact_url(opts.mock_url), gateways=[t.info for t in targets],
                           options=opts.recorded_options)

    def merge_gateways() -> None:
        if previous is None:
            info_run.gateways = [t.info for t in targets]
            return
        by_name = {g.name: g for g in info_run.gateways}
        for t in targets:
            by_name[t.name] = t.info
        info_run.gateways = list(by_name.values())

    results = {t.name: GatewayResult(name=t.name, planned=sum(len(i.exchange_ids()) for i in t.items),
                                     not_run=t.info.not_run) for t in targets}
    for e in done:
        if e.gateway in results:
            results[e.gateway].exchanges.append(e)
    docker_gws: Any = None
    if opts.docker:
        from gatewaylens.capture.docker_launch import DockerGateways, DockerUnavailable

        if opts.launch:
            raise InputError("--docker and --launch are exclusive: choose containers or local processes")
        if urlsplit(opts.mock_url).port != 9999:
            raise InputError("--docker: the container configs point at mock:9999, so --mock must use port 9999")
        try:  # before any traffic: no engine is a one-line error, exit 2
            docker_gws = await asyncio.to_thread(DockerGateways)
        except DockerUnavailable as e:
            raise InputError(f"--docker: {e}") from None
    interrupted: list[int] = []
    mock_server: Any = None
    writer: ExchangeWriter | None = None
    channels: dict[str, MockChannel | LocalMockChannel] = {}
    control_client: httpx.AsyncClient | None = None
    heartbeat: asyncio.Task[None] | None = None
    body_task: asyncio.Task[None] | None = None
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def on_signal(signum: int) -> None:
        if not interrupted:
            out(f"capture: {signal.Signals(signum).name}: stopping; completed exchanges are kept")
        interrupted.append(signum)
        if body_task is not None and not body_task.done():
            body_task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM) if signals else ():
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass

    async def body() -> None:
        nonlocal mock_server, writer, run_dir, control_client, heartbeat
        # Its "using / started" line waits until the channels are leased: a refusal is then the only line.
        mock_lines: list[str] = []
        mock_server = await ensure_mock(opts.mock_url, opts.start_mock, mock_lines.append, scrub)
        # Isolation: every gateway's channel is leased before any traffic, so a second capture on the
        # same mock and gateway name is refused here (one line, exit 2) instead of mixing records.
        holder = f"capture run {info_run.id} (pid {os.getpid()})"
        if mock_server is None:
            control_client = httpx.AsyncClient(timeout=10.0, trust_env=False)
        for t in targets:
            if control_client is not None:
                channels[t.name] = MockChannel(control_client, opts.mock_url, t.name, retry_s=opts.mock_retry_s,
                                               holder=holder)
            else:
                channels[t.name] = LocalMockChannel(mock_server.state, t.name, holder)
        for t in targets:
            try:
                await channels[t.name].lease()
            except ChannelBusy as e:
                raise InputError(f"--mock {redact_url(opts.mock_url)}: refused: {e}; two captures cannot share a "
                                 "gateway name on one mock: wait for the other run, or use another --mock port or "
                                 "gateway name") from None
            except MockError as e:
                raise InputError(f"--mock {redact_url(opts.mock_url)}: {e}") from None
        for line in mock_lines:
            out(line)
        if mock_server is None:
            if any(isinstance(c, MockChannel) and not c.leased for c in channels.values()):
                out(f"warning: the mock at {redact_url(opts.mock_url)} has no leases (an older build): this run's "
                    "channels are not protected from other clients")
            heartbeat = asyncio.ensure_future(_renew_leases(list(channels.values()), out))
        if opts.out is not None:
            opts.out.mkdir(parents=True, exist_ok=True)
        else:
            run_dir = new_run_dir(opts.output_root, started)
            info_run.id = run_dir.name
            point_latest(opts.output_root, run_dir)
        out(f"run: {run_dir}")
        if opts.launch:
            launchable = [t for t in targets if not t.custom]
            await asyncio.gather(*(launch_one(t, opts.mock_url, out, scrub) for t in launchable))
        if docker_gws is not None:
            for t in targets:
                if not t.custom:
                    await docker_one(docker_gws, t, info_run.id, out, scrub)
        for t in targets:
            if t.info.skipped:
                results[t.name].skipped = t.info.skipped
                out(f"{t.name}: skipped: {t.info.skipped}")
            else:
                out(f"{t.name}: gateway {redact_url(t.base_url)}  upstream (its mock channel) {t.channel_url}")
                if t.info.not_run:
                    out(f"{t.name}: not run: {t.info.not_run}")
        merge_gateways()
        write_run_info(run_dir, info_run, scrub)
        # The run is self-contained: analyze reads case notes from this copy (secrets scrubbed).
        corpus_copy = run_dir / "corpus.json"
        if not corpus_copy.exists():
            corpus_copy.write_text(scrub(opts.corpus.copy_text()), encoding="utf-8")
        writer = ExchangeWriter(run_dir, scrub)
        active = [t for t in targets if not t.info.skipped]
        reporter.start({t.name: sum(1 for i in t.items for x in i.exchange_ids() if x not in done_ids) for t in active})
        try:
            await asyncio.gather(*(_worker(t, opts, done_by_id, writer, reporter, results[t.name], channels[t.name])
                                   for t in active))
        finally:
            reporter.stop()

    try:
        body_task = asyncio.ensure_future(body())
        try:
            await body_task
        except asyncio.CancelledError:
            if not interrupted:
                raise
    finally:
        reporter.stop()
        if writer is not None:
            writer.close()
        await asyncio.gather(*(stop_one(t) for t in targets), return_exceptions=True)
        if docker_gws is not None:
            with contextlib.suppress(Exception):
                await docker_gws.stop_all()
        if heartbeat is not None:
            heartbeat.cancel()
        # Leases are given back (bounded: a mock that went away must not hold up the exit).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*(c.release() for c in channels.values()), return_exceptions=True), 2.0)
        if control_client is not None:
            with contextlib.suppress(Exception):
                await control_client.aclose()
        if mock_server is not None:
            with contextlib.suppress(Exception):
                await mock_server.stop()
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)

    rows = [results[t.name].summary() for t in targets]
    merge_gateways()
    info_run.finished = datetime.now(UTC)
    info_run.interrupted = bool(interrupted)
    all_ex = [e for r in results.values() for e in r.exchanges]
    info_run.counts = {
        "exchanges": len(all_ex),
        "ok": sum(1 for e in all_ex if e.status == "ok"),
        "error": sum(1 for e in all_ex if e.status == "error"),
        "unsupported": sum(1 for e in all_ex if e.status == "unsupported"),
        "upstream_calls": sum(len(e.upstream_requests) for e in all_ex),
        "not_captured": sum(r["not_captured"] for r in rows),
        "resumed_from_previous": len(done),
    }
    if run_dir.is_dir():  # not created when interrupted before the mock was up
        write_run_info(run_dir, info_run, scrub)

    if interrupted:
        code = 130 if interrupted[0] == signal.SIGINT else 143
    elif all(r["skipped"] for r in rows) or any(
            r["errors"] or (r["not_captured"] and not r["skipped"]) or r["aborted"] for r in rows):
        code = 1
    else:
        code = 0
    summary = {"run_dir": str(run_dir), "exit_code": code, "interrupted": bool(interrupted), "gateways": rows,
               "counts": info_run.counts}
    if opts.json_summary:
        stdout.write(scrub(json.dumps(summary, indent=2)) + "\n")
        summary_table(rows, sys.stderr)
    else:
        summary_table(rows, stdout)
    out(f"run written to {run_dir}" + (f" (interrupted; complete it with: capture ... --resume --out {run_dir})"
                                         if interrupted else ""))
    return RunOutcome(exit_code=code, run_dir=run_dir, summary=summary)

