"""Synthetic exchanges with known translations, for tests and the analyze benchmark.

Three made-up gateways behave in known ways:

* ``synth-identity`` forwards every body verbatim to the native upstream and the answer back;
* ``synth-translate`` translates faithfully across dialects (chat -> Anthropic messages,
  messages -> OpenAI chat, responses -> OpenAI chat) and translates the answer back;
* ``synth-lossy`` keeps the dialect but drops ``temperature``, renames ``max_tokens`` to
  ``max_completion_tokens``, drops ``system_fingerprint`` from answers and usage from streams.

``write_synthetic_run(DIR, n)`` writes ``run.json`` and ``exchanges.jsonl`` for ``n`` exchanges
(cycling over a bounded set of cases and gateways, as a real run does).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gatewaylens.capture.models import (
    ClientFrame,
    ClientRequest,
    ClientResponse,
    Exchange,
    GatewayInfo,
    RunInfo,
    Timings,
)
from gatewaylens.capture.rundir import EXCHANGES_FILE, write_run_info
from gatewaylens.dialects import DIALECT_PATHS, Dialect, UpstreamKind
from gatewaylens.mock.models import MockAnswer, RecordedExchange, SSEFrame

SYNTH_GATEWAYS = ("synth-identity", "synth-translate", "synth-lossy")
_T0 = datetime(2026, 1, 1, tzinfo=UTC)
_FINISH = {"chat": "stop", "messages": "end_turn", "responses": "completed"}


# --------------------------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------------------------


def client_body(dialect: Dialect, k: int, *, stream: bool = False) -> dict[str, Any]:
    """A client request with distinctive values (``k`` varies them between cases)."""
    sysp = f"You are the gwl synthetic assistant #{k}."
    user = f"Tell me about gwl-topic-{k} in one sentence."
    if dialect == "chat":
        body: dict[str, Any] = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": sysp}, {"role": "user", "content": user}],
            "max_tokens": 137 + k, "temperature": 0.37, "top_p": 0.83, "stop": [f"GWL_STOP_{k}"],
            "user": f"gwl-user-{k:04d}",
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
    elif dialect == "messages":
        body = {
            "model": "claude-3-5-haiku-latest", "system": sysp,
            "messages": [{"role": "user", "content": user}],
            "max_tokens": 137 + k, "temperature": 0.37, "top_p": 0.83, "stop_sequences": [f"GWL_STOP_{k}"],
            "metadata": {"user_id": f"gwl-user-{k:04d}"},
        }
        if stream:
            body["stream"] = True
    else:
        body = {
            "model": "gpt-4o-mini", "instructions": sysp, "input": user,
            "max_output_tokens": 137 + k, "temperature": 0.37, "top_p": 0.83, "user": f"gwl-user-{k:04d}",
        }
        if stream:
            body["stream"] = True
    return body


def translate_request(src: Dialect, dst: Dialect, body: dict[str, Any]) -> dict[str, Any]:
    """A faithful translation of the bodies :func:`client_body` makes."""
    if src == dst:
        return copy.deepcopy(body)
    out: dict[str, Any] = {"model": body["model"]}
    if src == "chat" and dst == "messages":
        msgs = [m for m in body["messages"] if m["role"] != "system"]
        system = [m["content"] for m in body["messages"] if m["role"] == "system"]
        if system:
            out["system"] = system[0]
        out["messages"] = [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]} for m in msgs]
        out["max_tokens"] = body["max_tokens"]
        for k in ("temperature", "top_p"):
            out[k] = body[k]
        out["stop_sequences"] = body["stop"]
        out["metadata"] = {"user_id": body["user"]}
        if body.get("stream"):
            out["stream"] = True
        return out
    if src == "messages" and dst == "chat":
        out["messages"] = [{"role": "system", "content": body["system"]}] + [
            {"role": m["role"], "content": m["content"]} for m in body["messages"]]
        out["max_tokens"] = body["max_tokens"]
        for k in ("temperature", "top_p"):
            out[k] = body[k]
        out["stop"] = body["stop_sequences"]
        out["user"] = body["metadata"]["user_id"]
        if body.get("stream"):
            out["stream"] = True
            out["stream_options"] = {"include_usage": True}
        return out
    if src == "responses" and dst == "chat":
        out["messages"] = [{"role": "system", "content": body["instructions"]}, {"role": "user", "content": body["input"]}]
        out["max_tokens"] = body["max_output_tokens"]
        for k in ("temperature", "top_p", "user"):
            out[k] = body[k]
        if body.get("stream"):
            out["stream"] = True
            out["stream_options"] = {"include_usage": True}
        return out
    raise ValueError(f"no synthetic translation {src} -> {dst}")


def answer_body(dialect: Dialect, text: str, usage: tuple[int, int], *, rid: str = "0001") -> dict[str, Any]:
    """A non-streamed answer in ``dialect`` (shaped like the mock's, with distinctive extras)."""
    inp, outp = usage
    if dialect == "chat":
        return {
            "id": f"chatcmpl-gwl{rid}", "object": "chat.completion", "created": 1767225600, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": inp, "completion_tokens": outp, "total_tokens": inp + outp},
            "system_fingerprint": "fp_gwl_mock", "service_tier": "default",
        }
    if dialect == "messages":
        return {
            "id": f"msg_gwl{rid}", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-latest",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": inp, "output_tokens": outp},
        }
    return {
        "id": f"resp_gwl{rid}", "object": "response", "created_at": 1767225600, "status": "completed",
        "model": "gpt-4o-mini",
        "output": [{"type": "message", "id": f"msg_gwl{rid}", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        "usage": {"input_tokens": inp, "output_tokens": outp, "total_tokens": inp + outp},
    }


def answer_frames(dialect: Dialect, text: str, usage: tuple[int, int] | None, *, rid: str = "0001",
                  fingerprint: bool = True) -> list[tuple[str | None, Any]]:
    """A streamed answer as ``(event, data)`` pairs (data: JSON value or ``[DONE]``)."""
    words = [w + " " for w in text.split(" ")]
    words[-1] = words[-1].rstrip(" ")
    frames: list[tuple[str | None, Any]] = []
    if dialect == "chat":
        base: dict[str, Any] = {"id": f"chatcmpl-gwl{rid}", "object": "chat.completion.chunk", "created": 1767225600,
                                "model": "gpt-4o-mini"}
        if fingerprint:
            base["system_fingerprint"] = "fp_gwl_mock"
        frames.append((None, {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}))
        frames += [(None, {**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}) for w in words]
        frames.append((None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        if usage:
            frames.append((None, {**base, "choices": [], "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                                                   "total_tokens": usage[0] + usage[1]}}))
        frames.append((None, "[DONE]"))
        return frames
    if dialect == "messages":
        frames.append(("message_start", {"type": "message_start", "message": {
            "id": f"msg_gwl{rid}", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-latest", "content": [],
            "stop_reason": None, "usage": {"input_tokens": usage[0] if usage else 0, "output_tokens": 1}}}))
        frames.append(("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
        frames.append(("ping", {"type": "ping"}))
        frames += [("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}})
                   for w in words]
        frames.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        frames.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                         "usage": {"output_tokens": usage[1] if usage else 0}}))
        frames.append(("message_stop", {"type": "message_stop"}))
        return frames
    resp = {"id": f"resp_gwl{rid}", "object": "response", "created_at": 1767225600, "status": "in_progress", "model": "gpt-4o-mini",
            "output": []}
    seq = 0

    def ev(t: str, **data: Any) -> tuple[str | None, Any]:
        nonlocal seq
        seq += 1
        return (t, {"type": t, "sequence_number": seq - 1, **data})

    frames.append(ev("response.created", response=resp))
    frames.append(ev("response.in_progress", response=resp))
    frames.append(ev("response.output_item.added", output_index=0, item={"type": "message", "id": f"msg_gwl{rid}", "role": "assistant", "content": []}))
    frames.append(ev("response.content_part.added", output_index=0, content_index=0, part={"type": "output_text", "text": ""}))
    frames += [ev("response.output_text.delta", output_index=0, content_index=0, delta=w) for w in words]
    frames.append(ev("response.output_text.done", output_index=0, content_index=0, text=text))
    frames.append(ev("response.content_part.done", output_index=0, content_index=0,
                     part={"type": "output_text", "text": text, "annotations": []}))
    frames.append(ev("response.output_item.done", output_index=0,
                     item={"type": "message", "id": f"msg_gwl{rid}", "role": "assistant", "status": "completed",
                           "content": [{"type": "output_text", "text": text, "annotations": []}]}))
    done = {**answer_body("responses", text, usage or (0, 0), rid=rid)}
    if not usage:
        done.pop("usage")
    frames.append(ev("response.completed", response=done))
    return frames


def sse_frames(frames: list[tuple[str | None, Any]]) -> list[SSEFrame]:
    return [SSEFrame(event=e, data=d if isinstance(d, str) else json.dumps(d), offset_ms=float(i)) for i, (e, d) in enumerate(frames)]


def client_frames(frames: list[tuple[str | None, Any]]) -> list[ClientFrame]:
    return [ClientFrame(event=e, data=d if isinstance(d, str) else json.dumps(d), offset_ms=float(i),
                        json_data=None if isinstance(d, str) else d) for i, (e, d) in enumerate(frames)]


#: What every real gateway sends with an upstream request (Anthropic needs its API version).
_UPSTREAM_HEADERS: dict[Dialect, dict[str, str]] = {
    "chat": {"content-type": "application/json"}, "responses": {"content-type": "application/json"},
    "messages": {"content-type": "application/json", "anthropic-version": "2023-06-01"},
}


def recorded(dialect: Dialect, body: Any, answer: MockAnswer, *, channel: str = "synth", seq: int = 1,
             headers: dict[str, str] | None = None) -> RecordedExchange:
    text = json.dumps(body)
    return RecordedExchange(
        seq=seq, channel=channel, instance="synth", time=_T0, method="POST", path=DIALECT_PATHS[dialect],
        raw_path=f"/ch/{channel}{DIALECT_PATHS[dialect]}", headers=headers or _UPSTREAM_HEADERS[dialect],
        dialect=dialect, body_text=text, body_size=len(text), body_json=body, body_is_json=True, response=answer,
    )


def make_exchange(*, gateway: str, case_id: str, dialect: Dialect, upstream: UpstreamKind, body: dict[str, Any],
                  upstream_dialect: Dialect | None, upstream_body: Any | None, answer: MockAnswer | None,
                  client_response: ClientResponse | None, variant: str = "",
                  client_headers: dict[str, str] | None = None, upstream_headers: dict[str, str] | None = None,
                  extra_upstream: list[RecordedExchange] | None = None) -> Exchange:
    """An exchange built by hand (tests) or by the generator (bench)."""
    ups: list[RecordedExchange] = list(extra_upstream or [])
    if upstream_dialect is not None and answer is not None:
        ups.append(recorded(upstream_dialect, upstream_body, answer, channel=gateway, seq=len(ups) + 1, headers=upstream_headers))
    ex_id = f"{gateway}/{case_id}/{upstream}" + (f"/{variant}" if variant else "")
    return Exchange(
        id=ex_id, case_id=case_id, gateway=gateway, dialect=dialect, stream=bool(body.get("stream")), upstream=upstream,
        variant=variant, client_request=ClientRequest(url=f"http://127.0.0.1:1{DIALECT_PATHS[dialect]}",
                                                      headers=client_headers or {"content-type": "application/json"}, body=body),
        upstream_requests=ups, client_response=client_response, timings=Timings(started=_T0, duration_ms=1.0),
    )


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------

_NATIVE: dict[Dialect, tuple[UpstreamKind, Dialect]] = {
    "chat": ("openai", "chat"), "responses": ("openai", "responses"), "messages": ("anthropic", "messages")}
_TRANSLATED: dict[Dialect, tuple[UpstreamKind, Dialect]] = {
    "chat": ("anthropic", "messages"), "responses": ("openai", "chat"), "messages": ("openai", "chat")}


def synthetic_exchange(i: int, *, cases: int = 24) -> Exchange:
    """Exchange number ``i``: deterministic, cycling over gateways, dialects, stream and cases."""
    gateway = SYNTH_GATEWAYS[i % len(SYNTH_GATEWAYS)]
    k = (i // len(SYNTH_GATEWAYS)) % cases
    dialect: Dialect = ("chat", "messages", "responses")[k % 3]
    stream = (k // 3) % 2 == 1
    case_id = f"synth-{k:03d}-{dialect}{'-stream' if stream else ''}"
    body = client_body(dialect, k, stream=stream)
    upstream, up_dialect = (_TRANSLATED if gateway == "synth-translate" else _NATIVE)[dialect]
    up_body = translate_request(dialect, up_dialect, body)
    if gateway == "synth-lossy":
        up_body.pop("temperature", None)
        if "max_tokens" in up_body:
            up_body["max_completion_tokens"] = up_body.pop("max_tokens")
    rid = f"{i:08d}"
    text = f"Synthetic answer about gwl-topic-{k}: the value is {1000 + k}."
    usage = (1234 + k, 567 + k)
    if stream:
        frames = answer_frames(up_dialect, text, usage, rid=rid)
        answer = MockAnswer(status=200, headers={"content-type": "text/event-stream"}, frames=sse_frames(frames), stream=True)
        lossy = gateway == "synth-lossy"
        cframes = answer_frames(dialect, text, None if lossy else usage, rid=rid, fingerprint=not lossy)
        cr = ClientResponse(status=200, headers={"content-type": "text/event-stream"}, frames=client_frames(cframes), stream=True)
    else:
        abody = answer_body(up_dialect, text, usage, rid=rid)
        answer = MockAnswer(status=200, headers={"content-type": "application/json"}, body=abody)
        cbody = copy.deepcopy(abody) if up_dialect == dialect else answer_body(dialect, text, usage, rid=rid)
        if gateway == "synth-lossy":
            cbody.pop("system_fingerprint", None)
        cr = ClientResponse(status=200, headers={"content-type": "application/json"}, body=cbody)
    return make_exchange(gateway=gateway, case_id=case_id, dialect=dialect, upstream=upstream, body=body,
                         upstream_dialect=up_dialect, upstream_body=up_body, answer=answer, client_response=cr,
                         variant=f"r{i // (len(SYNTH_GATEWAYS) * cases)}" if i >= len(SYNTH_GATEWAYS) * cases else "")


def synthetic_exchanges(n: int, *, cases: int = 24) -> Iterator[Exchange]:
    for i in range(n):
        yield synthetic_exchange(i, cases=cases)


def write_synthetic_run(run_dir: Path, n: int, *, cases: int = 24, seed: int = 0) -> Path:
    """Write a complete synthetic run directory (``run.json`` + ``exchanges.jsonl``)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    random.seed(seed)
    info = RunInfo(
        id=f"synthetic-{n}", started=_T0, finished=_T0, tool_version="synthetic", corpus_path="(synthetic)",
        corpus_sha256="0" * 64, mock_url="http://127.0.0.1:9999",
        gateways=[GatewayInfo(name=g, base_url="http://127.0.0.1:1", channel_url=f"http://127.0.0.1:9999/ch/{g}")
                  for g in SYNTH_GATEWAYS],
        options={"synthetic": True, "exchanges": n}, counts={"exchanges": n},
    )
    write_run_info(run_dir, info)
    with (run_dir / EXCHANGES_FILE).open("w", encoding="utf-8") as fh:
        for ex in synthetic_exchanges(n, cases=cases):
            fh.write(ex.model_dump_json())
            fh.write("\n")
    return run_dir


if __name__ == "__main__":  # python -m gatewaylens.analyze.synthetic DIR N [CASES]
    import sys

    if len(sys.argv) < 3:
        sys.exit("usage: python -m gatewaylens.analyze.synthetic RUN_DIR N_EXCHANGES [N_CASES]")
    out = write_synthetic_run(Path(sys.argv[1]), int(sys.argv[2]), cases=int(sys.argv[3]) if len(sys.argv) > 3 else 24)
    print(out)
