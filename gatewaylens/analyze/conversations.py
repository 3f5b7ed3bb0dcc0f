"""Cross-turn behaviours of conversation cases (direction ``conversation``).

A later turn of a conversation carries back what the client received (see
:mod:`gatewaylens.turns`).  Per turn this module compares three things: what the upstream issued
on the earlier turns (tool-call ids, thinking signatures, encrypted reasoning, response ids),
what the client got, and what the upstream receives on this turn.

* **Tool-call ids.**  A tool result the upstream receives must pair with a tool call in the same
  request, or with a call the upstream itself issued (state it holds, e.g. under
  ``previous_response_id``).  An id the gateway invented that reaches the upstream on both the call
  and its result is fine (``info``); a result id that pairs with nothing is an ``error``: the
  gateway could not map the id it gave the client back.
* **Signatures** (Anthropic ``thinking.signature`` and ``redacted_thinking.data``, Responses
  ``reasoning.encrypted_content``).  The upstream verifies them, so one it receives must be
  byte-equal to one it issued: altered is an ``error``, a thinking block sent without its
  signature is an ``error``.  A signed block of the previous answer that never reaches the
  upstream again — the client never got the signature, or the gateway dropped what the client
  sent back — is an ``error`` when the next request continues a tool call with thinking enabled
  (Anthropic refuses a final assistant tool_use turn that does not start with its thinking block,
  "Expected thinking or redacted_thinking, but found tool_use", quoted by LiteLLM 1.106.12 at
  litellm/llms/anthropic/chat/transformation.py:1993, which drops ``thinking`` then), else a ``warn``.
* **previous_response_id.**  The id the upstream receives must be one it issued (an id the
  gateway minted and mapped back is fine); a gateway that drops it must send the history inline
  instead, or the conversation state is lost (``error``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gatewaylens.analyze.engine import (
    AnalysedExchange,
    ExchangeResult,
    _counts,
    analyze_exchange,
    answer_index,
    exchange_score,
    upstream_dialect,
)
from gatewaylens.analyze.models import FindingRow, Kind, Severity
from gatewaylens.analyze.streams import parse_data
from gatewaylens.analyze.values import excerpt
from gatewaylens.capture.models import Exchange, Expectation
from gatewaylens.dialects import Dialect
from gatewaylens.turns import answer_body, parse_ref

# --------------------------------------------------------------------------------------------
# Facts of one answer and one request, per dialect
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Answer:
    """What one answer carries that a later turn sends back."""

    tool_ids: list[str] = field(default_factory=list)
    #: (kind, value): kind thinking / redacted / encrypted
    signatures: list[tuple[str, str]] = field(default_factory=list)
    response_id: str | None = None
    texts: list[str] = field(default_factory=list)
    blob: str = ""


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    for v in value if isinstance(value, list) else ():
        if isinstance(v, dict):
            yield v


def _block_signature(b: dict[str, Any]) -> tuple[str, str] | None:
    if b.get("type") == "redacted_thinking" and isinstance(b.get("data"), str) and b["data"]:
        return ("redacted", b["data"])
    if isinstance(b.get("signature"), str) and b["signature"]:
        return ("thinking", b["signature"])
    return None


def answer_facts(dialect: Dialect | None, body: Any) -> Answer:
    out = Answer()
    if not isinstance(body, dict):
        return out
    out.blob = json.dumps(body, ensure_ascii=False)
    if dialect == "chat":
        for choice in list(_dicts(body.get("choices")))[:1]:
            msg: dict[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
            out.tool_ids += [tc["id"] for tc in _dicts(msg.get("tool_calls")) if isinstance(tc.get("id"), str)]
            for key in ("thinking_blocks", "content_blocks"):
                out.signatures += [s for b in _dicts(msg.get(key)) if (s := _block_signature(b))]
            if isinstance(msg.get("content"), str) and msg["content"]:
                out.texts.append(msg["content"])
    elif dialect == "messages":
        for b in _dicts(body.get("content")):
            if b.get("type") in ("tool_use", "server_tool_use") and isinstance(b.get("id"), str):
                out.tool_ids.append(b["id"])
            elif b.get("type") in ("thinking", "redacted_thinking") and (s := _block_signature(b)):
                out.signatures.append(s)
            elif b.get("type") == "text" and isinstance(b.get("text"), str) and b["text"]:
                out.texts.append(b["text"])
    elif dialect == "responses":
        out.response_id = body.get("id") if isinstance(body.get("id"), str) else None
        for item in _dicts(body.get("output")):
            t = item.get("type")
            if t == "function_call" and isinstance(item.get("call_id"), str):
                out.tool_ids.append(item["call_id"])
            elif t == "reasoning" and isinstance(item.get("encrypted_content"), str) and item["encrypted_content"]:
                out.signatures.append(("encrypted", item["encrypted_content"]))
            elif t == "message":
                out.texts += [p["text"] for p in _dicts(item.get("content")) if isinstance(p.get("text"), str) and p["text"]]
    return out


@dataclass(slots=True)
class Request:
    """What one request sends back from earlier turns, with each value's place."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    results: list[tuple[str, str]] = field(default_factory=list)
    #: (path, kind, value or None): a thinking block without its signature has None
    signatures: list[tuple[str, str, str | None]] = field(default_factory=list)
    previous_response_id: str | None = None
    thinking: bool = False
    blob: str = ""


def request_facts(dialect: Dialect | None, body: Any) -> Request:
    out = Request()
    if not isinstance(body, dict):
        return out
    out.blob = json.dumps(body, ensure_ascii=False)
    if isinstance(body.get("previous_response_id"), str):
        out.previous_response_id = body["previous_response_id"]
    th = body.get("thinking")
    out.thinking = isinstance(th, dict) and th.get("type") in ("enabled", "adaptive")
    if dialect == "chat":
        for i, m in enumerate(body.get("messages") or []):
            if not isinstance(m, dict):
                continue
            for j, tc in enumerate(m.get("tool_calls") or []):
                if isinstance(tc, dict) and isinstance(tc.get("id"), str):
                    out.calls.append((f"messages[{i}].tool_calls[{j}].id", tc["id"]))
            if m.get("role") == "tool" and isinstance(m.get("tool_call_id"), str):
                out.results.append((f"messages[{i}].tool_call_id", m["tool_call_id"]))
            for key in ("thinking_blocks", "content_blocks"):
                for j, b in enumerate(m.get(key) or []):
                    if isinstance(b, dict) and (s := _block_signature(b)):
                        leaf = "data" if s[0] == "redacted" else "signature"
                        out.signatures.append((f"messages[{i}].{key}[{j}].{leaf}", s[0], s[1]))
    elif dialect == "messages":
        for i, m in enumerate(body.get("messages") or []):
            content = m.get("content") if isinstance(m, dict) else None
            for j, b in enumerate(content if isinstance(content, list) else []):
                if not isinstance(b, dict):
                    continue
                where = f"messages[{i}].content[{j}]"
                t = b.get("type")
                if t in ("tool_use", "server_tool_use") and isinstance(b.get("id"), str):
                    out.calls.append((f"{where}.id", b["id"]))
                elif t == "tool_result" and isinstance(b.get("tool_use_id"), str):
                    out.results.append((f"{where}.tool_use_id", b["tool_use_id"]))
                elif t == "thinking":
                    sig = b.get("signature")
                    out.signatures.append((f"{where}.signature", "thinking", sig if isinstance(sig, str) and sig else None))
                elif t == "redacted_thinking":
                    data = b.get("data")
                    out.signatures.append((f"{where}.data", "redacted", data if isinstance(data, str) and data else None))
    elif dialect == "responses":
        items = body.get("input")
        for i, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict):
                continue
            t = item.get("type")
            if t == "function_call" and isinstance(item.get("call_id"), str):
                out.calls.append((f"input[{i}].call_id", item["call_id"]))
            elif t == "function_call_output" and isinstance(item.get("call_id"), str):
                out.results.append((f"input[{i}].call_id", item["call_id"]))
            elif t == "reasoning" and "encrypted_content" in item:
                enc = item.get("encrypted_content")
                out.signatures.append((f"input[{i}].encrypted_content", "encrypted",
                                       enc if isinstance(enc, str) and enc else None))
    return out


# --------------------------------------------------------------------------------------------
# One conversation, turn by turn
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TurnFacts:
    turn: int
    upstream: Answer
    client: Answer
    #: client-visible tool id -> the upstream's own id, paired by position in the answer
    pairs: dict[str, str] = field(default_factory=dict)
    #: what the client said on this turn (its texts), to recognise the turn sent upstream later
    said: list[str] = field(default_factory=list)


_SAID_KEYS = frozenset({"content", "text", "input", "instructions", "system"})


def said_texts(body: Any, key: str = "") -> list[str]:
    """The texts a client request carries (message contents, input, instructions, system)."""
    if isinstance(body, str):
        return [body] if key in _SAID_KEYS and len(body) >= 12 else []
    out: list[str] = []
    if isinstance(body, dict):
        for k, v in body.items():
            out += said_texts(v, k if k in _SAID_KEYS else ("" if isinstance(v, str) else key))
    elif isinstance(body, list):
        for v in body:
            out += said_texts(v, key)
    return out


def turn_facts(ex: Exchange) -> TurnFacts:
    up = Answer()
    ai = answer_index(ex)
    if ai is not None and ex.upstream_requests[ai].response.status < 400:
        rec = ex.upstream_requests[ai]
        ans = rec.response
        frames = [(f.event, parse_data(f.data)) for f in ans.frames] if ans.frames is not None else None
        up = answer_facts(upstream_dialect(rec), answer_body(upstream_dialect(rec), ans.body, frames))
    client = Answer()
    cr = ex.client_response
    if cr is not None and 200 <= cr.status < 300:
        frames = ([(f.event, f.json_data if f.json_data is not None else f.data) for f in cr.frames]
                  if cr.frames is not None else None)
        client = answer_facts(ex.dialect, answer_body(ex.dialect, cr.body, frames))
    pairs = dict(zip(client.tool_ids, up.tool_ids, strict=False))
    said = said_texts(ex.client_request.body) if ex.client_request is not None else []
    return TurnFacts(ex.turn or 1, up, client, pairs, said)


@dataclass(slots=True)
class _Out:
    ex: Exchange
    rows: list[FindingRow] = field(default_factory=list)

    def add(self, kind: Kind, path: str, to_path: str | None, before: Any, after: Any, severity: Severity,
            message: str) -> None:
        ex = self.ex
        self.rows.append(FindingRow(
            gateway=ex.gateway, case_id=ex.case_id, dialect=ex.dialect, stream=ex.stream, upstream=ex.upstream,
            direction="conversation", kind=kind, path=path, to_path=to_path if to_path != path else None,
            before=before, after=after, severity=severity, message=message, exchange_id=ex.id, variant=ex.variant,
            upstream_index=0, turn=ex.turn))


def _short(v: Any, n: int = 60) -> str:
    text = str(v)
    return text if len(text) <= n else text[: n - 1] + "…"


def _history_place(ex: Exchange, turn: int) -> str:
    """Where the client put turn ``turn``'s answer in this request (from how the turn was built)."""
    places = []
    for r in ex.built_from:
        try:
            ref = parse_ref(r.ref)
        except ValueError:
            continue
        if ref.kind == "answer" and ref.turn_for(ex.turn or 1) == turn:
            places.append(r.at)
    return min(places, key=len) if places else "(conversation)"


def cross_turn_findings(ex: Exchange, earlier: list[TurnFacts]) -> list[FindingRow]:
    """Findings of turn ``ex.turn`` against the earlier turns' facts (oldest first)."""
    out = _Out(ex)
    if not earlier or ex.client_request is None or not ex.upstream_requests:
        return out.rows
    rec = ex.upstream_requests[0]
    if not rec.body_is_json:
        return out.rows
    client = request_facts(ex.dialect, ex.client_request.body)
    up = request_facts(upstream_dialect(rec), rec.body_json)
    prev = earlier[-1]
    _tool_ids(out, client, up, earlier)
    _signatures(out, ex, client, up, earlier, prev)
    _previous_response(out, client, up, earlier, prev)
    return out.rows


def _tool_ids(out: _Out, client: Request, up: Request, earlier: list[TurnFacts]) -> None:
    issued = {i for t in earlier for i in t.upstream.tool_ids}
    got = {i for t in earlier for i in t.client.tool_ids}
    pairs = {k: v for t in earlier for k, v in t.pairs.items()}
    in_request = {i for _p, i in up.calls}
    # Only a stateful upstream (a Responses API continuing previous_response_id) holds earlier calls
    # itself; every other upstream needs the call in the same request as its result.
    held = issued if up.previous_response_id is not None else set()
    for n, (up_path, z) in enumerate(up.results):
        cl_path, y = client.results[n] if n < len(client.results) else (up_path, None)
        if y not in got and z not in issued:
            continue  # a result for a call no earlier turn produced (a canned history)
        x = pairs.get(y) if y is not None else None
        if z in in_request or z in held:
            if z == x or (x is None and z in issued):
                kind: Kind = "kept" if z == y else "converted"
                msg = ("the tool-call id the upstream issued came back to it unchanged" if z == y else
                       f"the gateway gave the client its own id ({y}) and mapped it back to the upstream's ({z})")
                out.add(kind, cl_path, up_path, y, z, "info", msg)
            else:
                out.add("changed", cl_path, up_path, y, z, "info",
                        "the upstream received an id the gateway made up, on the tool call and its result alike")
        else:
            where = "in the upstream request" + ("" if held else " (this upstream keeps no state between requests)")
            out.add("changed", cl_path, up_path, y, z, "error",
                    f"the tool result's id ({_short(z)}) matches no tool call {where}: the upstream cannot tie "
                    "the result to a call" + (f"; the gateway could not map the id it gave the client ({_short(y)}) back"
                                              if y is not None and y != z else ""))


_SIG_NAMES = {"thinking": "thinking signature", "redacted": "redacted thinking", "encrypted": "encrypted reasoning"}


def _signatures(out: _Out, ex: Exchange, client: Request, up: Request, earlier: list[TurnFacts],
                prev: TurnFacts) -> None:
    issued = {v: t.turn for t in earlier for _k, v in t.upstream.signatures}
    if not issued:
        return
    received = set()
    for n, (up_path, kind, value) in enumerate(up.signatures):
        cl = client.signatures[n] if n < len(client.signatures) else None
        cl_path = cl[0] if cl else up_path
        name = _SIG_NAMES[kind]
        if value is None:
            if kind == "thinking":
                out.add("dropped", cl_path, up_path, cl[2] if cl else None, None, "error",
                        "a thinking block reached the upstream without its signature: Anthropic refuses it")
            continue
        received.add(value)
        if value in issued:
            out.add("kept", cl_path, up_path, value, value, "info",
                    f"the {name} the upstream issued on turn {issued[value]} came back to it unchanged")
        else:
            before = next((v for k, v in prev.upstream.signatures if k == kind), None)
            out.add("changed", cl_path, up_path, before, value, "error",
                    f"{name} altered between turns: the upstream receives a value it never issued, and rejects it")
    # Signed blocks of the previous answer that do not come back.
    continues_tool = bool(prev.upstream.tool_ids) and up.thinking
    for kind, value in prev.upstream.signatures:
        if value in received:
            continue
        name = _SIG_NAMES[kind]
        place = _history_place(ex, prev.turn)
        client_got = value in prev.client.blob
        severity: Severity = "error" if continues_tool and kind != "encrypted" else "warn"
        why = (" (this turn continues a tool call with thinking enabled: Anthropic refuses it)"
               if severity == "error" else "")
        if not client_got:
            out.add("dropped", place, None, value, None, severity,
                    f"{name} lost between turns: the upstream issued it on turn {prev.turn}, the client never got it, "
                    f"so turn {ex.turn} could not carry it{why}")
        elif value in client.blob:
            out.add("dropped", place, None, value, None, severity,
                    f"the client sent the {name} of turn {prev.turn} back, and the gateway did not pass it on{why}")


def _previous_response(out: _Out, client: Request, up: Request, earlier: list[TurnFacts], prev: TurnFacts) -> None:
    p = client.previous_response_id
    got = {t.client.response_id for t in earlier if t.client.response_id}
    if p is None or p not in got:
        return
    issued = {t.upstream.response_id for t in earlier if t.upstream.response_id}
    q = up.previous_response_id
    if q is not None:
        if q in issued:
            kind: Kind = "kept" if q == p else "converted"
            out.add(kind, "previous_response_id", "previous_response_id", p, q, "info",
                    "previous_response_id reached the upstream as the id it issued"
                    + ("" if q == p else " (the gateway's own id mapped back)"))
        else:
            out.add("changed", "previous_response_id", "previous_response_id", p, q, "error",
                    "previous_response_id names a response the upstream never issued: the gateway did not map its "
                    "own id back")
        return
    # Evidence that the gateway sent turn N inline: something of that turn upstream that the client's
    # own request does not carry (a tool id the client echoes in a result proves nothing).
    said = [t for t in prev.said if t in up.blob and t not in client.blob]
    calls = {i for _p, i in up.calls} - {i for _p, i in client.calls}
    answered = ([t for t in prev.upstream.texts if t in up.blob and t not in client.blob]
                + [i for i in prev.upstream.tool_ids if i in calls])
    n = prev.turn
    if said and answered:
        out.add("converted", "previous_response_id", "(history)", p, excerpt(said[0], 60), "info",
                f"the gateway resolved previous_response_id itself: turn {n} went upstream inline")
    elif answered:
        out.add("dropped", "previous_response_id", "(history)", p, excerpt(answered[0], 60), "error",
                f"conversation state partly lost: the gateway sent turn {n}'s answer upstream in place of "
                f"previous_response_id, but not what the client said on turn {n}")
    elif said:
        out.add("dropped", "previous_response_id", "(history)", p, excerpt(said[0], 60), "error",
                f"conversation state partly lost: the gateway sent what the client said on turn {n} in place of "
                f"previous_response_id, but not the answer")
    else:
        out.add("dropped", "previous_response_id", None, p, None, "error",
                f"conversation state lost: previous_response_id was not sent upstream and turn {n} was not sent "
                "in its place")


class ConversationTracker:
    """Keeps the facts of each open conversation's turns, in file order (capture writes a
    conversation's turns in order), and yields each later turn's cross-turn findings."""

    def __init__(self, include_kept: bool = False) -> None:
        self.open: dict[str, list[TurnFacts]] = {}
        self.include_kept = include_kept

    def add(self, ex: Exchange) -> list[FindingRow]:
        if ex.conversation is None or ex.turn is None:
            return []
        earlier = self.open.setdefault(ex.conversation, [])
        rows: list[FindingRow] = []
        if ex.status != "unsupported":
            rows = cross_turn_findings(ex, [t for t in earlier if t.turn < ex.turn])
            if not self.include_kept:  # unchanged values are listed only with --include-kept, as elsewhere
                rows = [r for r in rows if r.kind != "kept" or r.severity != "info"]
            earlier.append(turn_facts(ex))
        if ex.turns is not None and ex.turn >= ex.turns:
            self.open.pop(ex.conversation, None)
        return rows


R = TypeVar("R", bound=AnalysedExchange)


def with_conversation(result: R, rows: list[FindingRow]) -> R:
    """Add cross-turn findings to an analysed exchange (its counts and score follow).  A request
    finding that only saw an id change (LiteLLM's own Responses id mapped back to the upstream's)
    is no loss once the cross-turn check shows the mapping: it becomes the conversion it is."""
    if rows:
        mapped = {r.path for r in rows if r.kind in ("kept", "converted") and r.severity == "info"}
        for f in result.findings:
            if f.direction == "request" and f.kind == "changed" and f.path in mapped:
                f.kind, f.severity = "converted", "info"
                f.message = "an id the gateway issued, mapped back to the upstream's own (see the conversation finding)"
        result.findings.extend(rows)
        result.summary.counts = _counts(result.findings)
        result.summary.score = exchange_score(result.summary.outcome, result.findings)
    return result


def analyze_exchanges(exchanges: Iterable[Exchange], *, include_kept: bool = False,
                      expects: Mapping[str, Sequence[Expectation]] | None = None) -> Iterator[ExchangeResult]:
    """:func:`analyze_exchange` over a sequence (``expects``: case id -> its expectations), with the
    cross-turn findings of conversations."""
    tracker = ConversationTracker(include_kept)
    for ex in exchanges:
        result = analyze_exchange(ex, include_kept=include_kept, expectations=(expects or {}).get(ex.case_id, ()))
        yield with_conversation(result, tracker.add(ex))
