"""Unit checks of the stream grammar, usage semantics, rebuilt content, header policy and model
substitution, on answers rendered by the real mock (gatewaylens/mock/answers.py) and the usage
objects real gateways sent (LiteLLM 1.106.12, Portkey 1.15.2, claude-code-router 2.0.0, captured here)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gatewaylens.analyze import reconstruct, usage
from gatewaylens.analyze.headers import compare_headers
from gatewaylens.analyze.substitution import bare, model_entries
from gatewaylens.analyze.synthetic import answer_body, client_body, make_exchange, translate_request
from gatewaylens.capture.models import ClientResponse, HeaderRule
from gatewaylens.dialects import redaction_marker
from gatewaylens.mock.answers import make_plan, render_events
from gatewaylens.mock.models import MockAnswer
from gatewaylens.streamgrammar import check

Frames = list[tuple[str | None, Any]]


def mock_frames(dialect: str, shapes: tuple[str, ...] = (), **body: Any) -> Frames:
    plan = make_plan(dialect, {"model": "m", "stream": True, **body}, 1, 100, shapes=shapes)  # type: ignore[arg-type]
    return [(e, copy.deepcopy(d)) for e, d in render_events(plan)]


def codes(dialect: str, frames: Frames, **kw: Any) -> set[str]:
    return {v.code for v in check(dialect, frames, **kw)}  # type: ignore[arg-type]


# ---- grammar -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["chat", "responses", "messages"])
def test_the_mocks_streams_are_grammatical(dialect: str) -> None:
    assert codes(dialect, mock_frames(dialect, stream_options={"include_usage": True}), usage_expected=True) == set()


def test_messages_rules() -> None:
    f = mock_frames("messages")
    assert codes("messages", [(None, d) for _, d in f]) == {"event_name_missing"}
    bad = copy.deepcopy(f)
    bad[0] = ("message_delta", bad[0][1])
    assert "event_name" in codes("messages", bad)
    delta_first = [f[0], *[x for x in f if x[0] == "content_block_delta"][:1], *f[1:]]
    assert "delta_before_start" in codes("messages", delta_first)
    gap = copy.deepcopy(f)
    for _, d in gap:
        if isinstance(d, dict) and "index" in d:
            d["index"] = 1
    assert "index_gap" in codes("messages", gap)
    assert codes("messages", [*f, ("ping", {"type": "ping"}), ("message_delta", f[-2][1])]) == {"after_terminal"}
    assert "terminal_missing" in codes("messages", f[:-1])
    tool = mock_frames("messages", tools=[{"name": "t", "input_schema": {}}], tool_choice={"type": "any"})
    wrong = [(e, {**d, "delta": {"type": "text_delta", "text": "x"}}) if e == "content_block_delta" else (e, d)
             for e, d in tool]
    assert codes("messages", wrong) == {"delta_type"}


def test_chat_rules() -> None:
    f = mock_frames("chat", stream_options={"include_usage": True})
    done = f.pop()
    assert codes("chat", [*f[:-1], done, f[-1]]) == {"usage_after_done"}
    assert codes("chat", [*f, done, f[1]]) == {"after_terminal"}
    assert codes("chat", [*f, done, done]) == {"terminal_repeated"}
    late = copy.deepcopy(f[1][1])
    late["choices"][0]["delta"] = {"content": "late"}
    assert "delta_after_finish" in codes("chat", [*f[:-1], (None, late), f[-1], done])
    other = copy.deepcopy(f[2][1])
    other["id"] = "chatcmpl-other"
    assert "id_inconsistent" in codes("chat", [f[0], f[1], (None, other), *f[3:], done])
    tools = mock_frames("chat", tools=[{"type": "function", "function": {"name": "t"}}], tool_choice="required")
    no_id = copy.deepcopy(tools)
    del no_id[1][1]["choices"][0]["delta"]["tool_calls"][0]["id"]
    assert codes("chat", no_id) == {"tool_call_start"}


def test_responses_rules() -> None:
    f = mock_frames("responses")
    no_seq = [(e, {k: v for k, v in d.items() if k != "sequence_number"}) for e, d in f]
    assert codes("responses", no_seq) == {"sequence_number"}
    assert codes("responses", [(None, d) for _, d in f]) == {"event_name_missing"}
    assert codes("responses", f[1:]) == {"first_event"}
    assert codes("responses", [*f, (None, "[DONE]")]) == {"after_terminal"}  # info: Chat's marker after the end
    assert [v.severity for v in check("responses", [*f, (None, "[DONE]")])] == ["info"]
    unclosed = [x for x in f if x[0] != "response.output_item.done"]
    renumbered = [(e, {**d, "sequence_number": i}) for i, (e, d) in enumerate(unclosed)]
    assert codes("responses", renumbered) == {"block_not_closed"}


# ---- usage semantics -------------------------------------------------------------------------


ANTHROPIC_UP = {"input_tokens": 1068, "cache_creation_input_tokens": 19, "cache_read_input_tokens": 13,
                "output_tokens": 47, "service_tier": "standard"}


def kinds(entries: list[Any]) -> set[tuple[str, str | None, str]]:
    return {(e.kind, e.dst_path or e.src_path, e.severity) for e in entries if e.kind != "converted"}


def test_portkey_prompt_tokens_without_cache_is_an_error_with_both_numbers() -> None:
    # Portkey 1.15.2, chat client, Anthropic upstream (captured): prompt_tokens = input_tokens alone.
    portkey = {"prompt_tokens": 1068, "completion_tokens": 47, "total_tokens": 1147,
               "prompt_tokens_details": {"cached_tokens": 13}}
    entries = usage.compare(ANTHROPIC_UP, "messages", portkey, "chat")
    assert kinds(entries) == {("changed", "usage.prompt_tokens", "error"),
                              ("dropped", "usage.cache_creation_input_tokens", "info")}  # chat has no cache-write place
    (e,) = [x for x in entries if x.kind == "changed"]
    assert "1068" in e.message and "1100" in e.message and "left out" in e.message


def test_litellm_conversion_is_no_finding() -> None:
    # LiteLLM 1.106.12, same route: prompt_tokens = 1068 + 13 + 19, total = prompt + completion.
    litellm = {"prompt_tokens": 1100, "completion_tokens": 47, "total_tokens": 1147,
               "prompt_tokens_details": {"cached_tokens": 13, "cache_write_tokens": 19}}
    assert kinds(usage.compare(ANTHROPIC_UP, "messages", litellm, "chat")) == set()


def test_openai_to_anthropic_subtracts_cached_and_names_double_counting() -> None:
    up = {"input_tokens": 1062, "input_tokens_details": {"cached_tokens": 13}, "output_tokens": 47,
          "output_tokens_details": {"reasoning_tokens": 7}, "total_tokens": 1109}
    good = {"input_tokens": 1049, "cache_read_input_tokens": 13, "output_tokens": 47}
    assert kinds(usage.compare(up, "responses", good, "messages")) == {
        ("dropped", "usage.output_tokens_details.reasoning_tokens", "info")}  # Messages has no place for it
    # claude-code-router 2.0.0 on its Responses route (captured): cached tokens left in input_tokens, cache read 0.
    ccr = {"input_tokens": 1062, "output_tokens": 47, "cache_read_input_tokens": 0}
    got = {k for k in kinds(usage.compare(up, "responses", ccr, "messages")) if k[2] != "info"}
    assert got == {("changed", "usage.input_tokens", "error"), ("changed", "usage.cache_read_input_tokens", "warn")}  # a cache detail: warn


def test_usage_edge_cases() -> None:
    up: dict[str, Any] = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                          "prompt_tokens_details": {"cached_tokens": 13, "audio_tokens": 0}}
    same = copy.deepcopy(up)
    assert kinds(usage.compare(up, "chat", same, "chat")) == set()
    lost_zero = copy.deepcopy(up)
    del lost_zero["prompt_tokens_details"]["audio_tokens"]
    assert kinds(usage.compare(up, "chat", lost_zero, "chat")) == {
        ("dropped", "usage.prompt_tokens_details.audio_tokens", "info")}
    text = {**copy.deepcopy(up), "completion_tokens": "20"}
    assert kinds(usage.compare(up, "chat", text, "chat")) == {("changed", "usage.completion_tokens", "warn")}
    lost_total = {k: v for k, v in up.items() if k != "total_tokens"}
    assert kinds(usage.compare(up, "chat", lost_total, "chat")) == {("dropped", "usage.total_tokens", "error")}
    assert kinds(usage.compare(None, "chat", {"prompt_tokens": 0, "completion_tokens": 0}, "chat")) == {
        ("added", "usage", "warn")}


def test_stream_usage_is_read_as_the_sdk_accumulates_it() -> None:
    f = mock_frames("messages", ("usage-final",))
    u = usage.stream_usage("messages", f)
    assert u is not None and u["input_tokens"] > 1000 and u["cache_read_input_tokens"] == 13 and u["output_tokens"] == 47


# ---- rebuilt content ---------------------------------------------------------------------------


def test_interleaved_parallel_tool_calls_rebuild_per_call_and_match_sequential_blocks() -> None:
    tools_chat = [{"type": "function", "function": {"name": n}} for n in ("a", "b")]
    chat = reconstruct.rebuild("chat", mock_frames("chat", ("parallel-tools",), tools=tools_chat, tool_choice="required"))
    assert [(t.name, json.loads(t.args)["gwl_probe"]) for t in chat.tools] == [("a", 4242), ("b", 4242)]
    msgs = reconstruct.rebuild("messages", mock_frames("messages", ("parallel-tools",),
                                                       tools=[{"name": "a"}, {"name": "b"}], tool_choice={"type": "any"}))
    entries = reconstruct.compare(chat, msgs)
    assert {e.kind for e in entries} <= {"changed"} and all(e.src_path and e.src_path.endswith(".id") for e in entries)
    one = reconstruct.Rebuilt("messages", tools=msgs.tools[:1])
    assert [(e.kind, e.src_path, e.severity) for e in reconstruct.compare(msgs, one)] == [
        ("dropped", "tool_calls[1]", "error")]


def test_lost_signature_and_inconsistent_final_object() -> None:
    f = mock_frames("messages", ("thinking",))
    up = reconstruct.rebuild("messages", f)
    cl = reconstruct.rebuild("messages", [x for x in f if not (isinstance(x[1], dict) and
                                                               x[1].get("delta", {}).get("type") == "signature_delta")])
    assert [(e.kind, e.src_path) for e in reconstruct.compare(up, cl)] == [("dropped", "thinking.signature")]
    r = mock_frames("responses")
    r[-1][1]["response"]["output"][0]["content"][0]["text"] = "something else"
    got = reconstruct.self_consistency(reconstruct.rebuild("responses", r))
    assert [(e.kind, e.src_path, e.severity) for e in got] == [("changed", "response.output", "error")]


# ---- header policy -------------------------------------------------------------------------------


def _fp(v: str) -> str:
    return redaction_marker(v)


def test_header_policy_table() -> None:
    client = {"authorization": "Bearer " + _fp("sk-client-canary-123456"), "x-portkey-provider": "openai",
              "anthropic-beta": "a,b", "user-agent": "sdk/1", "connection": "keep-alive", "traceparent": "00-1"}
    # The gateway's own key, control headers stripped, user-agent replaced, anthropic-beta to OpenAI: nothing.
    up = {"authorization": "Bearer " + _fp("sk-gateway-own-999999"), "user-agent": "gw/2"}
    assert [(e.kind, e.src_path, e.severity) for e in compare_headers(client, up, upstream_kind="openai")] == [
        ("dropped", "traceparent", "info")]
    # To Anthropic: a lost beta flag and a missing anthropic-version matter; a control header forwarded too.
    up2 = {"x-api-key": _fp("sk-gateway-own-999999"), "anthropic-beta": "a", "x-portkey-provider": "openai",
           "traceparent": "00-1"}
    got = {(e.kind, e.src_path or e.dst_path, e.severity) for e in compare_headers(client, up2, upstream_kind="anthropic")}
    assert got == {("changed", "anthropic-beta", "warn"), ("dropped", "anthropic-version", "error"),
                   ("kept", "x-portkey-provider", "warn"), ("dropped", "user-agent", "info")}
    # A profile rule makes forwarding the client's key the design (Portkey).
    same = {"authorization": client["authorization"]}
    assert [e.severity for e in compare_headers(same, same)] == ["warn"]
    assert compare_headers(same, same, policy=[HeaderRule(name="authorization", policy="forward")]) == []


# ---- model substitution ---------------------------------------------------------------------------


def _model_exchange(sent: str, told: str, expected: str | None = None) -> Any:
    body = client_body("chat", 1)
    up_body = {**translate_request("chat", "chat", body), "model": sent}
    ans = {**answer_body("chat", "hi", (10, 2)), "model": sent}
    ex = make_exchange(gateway="gw", case_id="c", dialect="chat", upstream="openai", body=body, upstream_dialect="chat",
                       upstream_body=up_body, answer=MockAnswer(status=200, body=ans),
                       client_response=ClientResponse(status=200, body={**ans, "model": told}))
    ex.expected_model = expected
    return ex


def test_model_substitution() -> None:
    assert bare("openai/gpt-4o-mini-2024-07-18") == bare("mock-openai,gpt-4o-mini") == "gpt-4o-mini"
    assert model_entries(_model_exchange("gpt-4o-mini", "gpt-4o-mini"), 0) == []
    assert model_entries(_model_exchange("openai/gpt-4o-mini", "gpt-4o-mini"), 0) == []
    assert model_entries(_model_exchange("gpt-4.1", "gpt-4o-mini", expected="gpt-4.1"), 0) == []  # a declared alias
    up = model_entries(_model_exchange("gpt-4.1", "gpt-4.1"), 0)
    assert [(e.kind, e.dst_path, e.severity) for e in up] == [("model_substituted", "(call).model", "warn")]
    wrong_alias = model_entries(_model_exchange("gpt-4.1", "gpt-4.1", expected="o4-mini"), 0)
    assert [e.severity for e in wrong_alias] == ["error"]
    told = model_entries(_model_exchange("gpt-4o-mini", "unknown"), 0)
    assert [(e.dst_path, e.before, e.after) for e in told] == [("(response).model", "gpt-4o-mini", "unknown")]
