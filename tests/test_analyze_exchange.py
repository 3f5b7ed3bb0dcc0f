"""Whole exchanges: streams, headers, rejections, retries, unsupported routes, scores."""

from __future__ import annotations

import copy
from typing import Any

from gatewaylens.analyze.engine import analyze_exchange
from gatewaylens.analyze.synthetic import (
    answer_body,
    answer_frames,
    client_body,
    client_frames,
    make_exchange,
    sse_frames,
    translate_request,
)
from gatewaylens.capture.models import ClientResponse, Exchange
from gatewaylens.dialects import redaction_marker
from gatewaylens.mock.models import MockAnswer

TEXT = "The gwl answer is forty-two, said the mock."
USAGE = (1234, 567)


def stream_exchange(client_dialect: str, up_dialect: str, *, client_usage: bool = True, drop_done: bool = False,
                    client_text: str = TEXT, fingerprint: bool = True) -> Exchange:
    body = client_body(client_dialect, 1, stream=True)  # type: ignore[arg-type]
    up_frames = answer_frames(up_dialect, TEXT, USAGE)  # type: ignore[arg-type]
    cl_frames = answer_frames(client_dialect, client_text, USAGE if client_usage else None,  # type: ignore[arg-type]
                              fingerprint=fingerprint)
    if drop_done:
        cl_frames = cl_frames[:-1]
    return make_exchange(
        gateway="gw", case_id="c-stream", dialect=client_dialect, upstream="openai" if up_dialect != "messages" else "anthropic",  # type: ignore[arg-type]
        body=body, upstream_dialect=up_dialect, upstream_body=translate_request(client_dialect, up_dialect, body),  # type: ignore[arg-type]
        answer=MockAnswer(status=200, frames=sse_frames(up_frames), stream=True),
        client_response=ClientResponse(status=200, frames=client_frames(cl_frames), stream=True),
    )


def summary(findings: list[Any]) -> set[tuple[str, str, str, str]]:
    return {(f.direction, f.kind, f.path, f.severity) for f in findings}


def test_identity_stream_has_no_findings_and_a_clean_summary() -> None:
    r = analyze_exchange(stream_exchange("chat", "chat"))
    assert r.findings == []
    ss = r.summary.stream_summary
    assert ss is not None and ss.text_equal and ss.usage_equal and ss.terminal
    assert ss.client_usage == {"input": 1234, "output": 567, "total": 1801}
    assert r.summary.score == 100.0


def test_identity_stream_with_include_kept_lists_stream_facts() -> None:
    r = analyze_exchange(stream_exchange("chat", "chat"), include_kept=True)
    stream = {(f.kind, f.path) for f in r.findings if f.direction == "stream"}
    assert stream == {("kept", "text"), ("kept", "usage"), ("kept", "finish_reason"), ("kept", "terminal")}


def test_stream_usage_lost_is_an_error_when_the_client_asked() -> None:
    r = analyze_exchange(stream_exchange("chat", "chat", client_usage=False))
    assert summary(r.findings) == {("stream", "dropped", "usage", "error")}


def test_stream_usage_not_requested_is_info() -> None:
    ex = stream_exchange("chat", "chat", client_usage=False)
    assert ex.client_request is not None
    del ex.client_request.body["stream_options"]
    r = analyze_exchange(ex)
    assert ("stream", "dropped", "usage", "info") in summary(r.findings)


def test_stream_terminal_missing_and_text_changed() -> None:
    r = analyze_exchange(stream_exchange("chat", "chat", drop_done=True, client_text="The gwl answer is something else."))
    got = summary(r.findings)
    assert ("stream", "dropped", "terminal", "error") in got
    assert ("stream", "changed", "text", "error") in got
    assert r.summary.score == 50.0


def test_stream_chunk_field_dropped() -> None:
    r = analyze_exchange(stream_exchange("chat", "chat", fingerprint=False))
    assert summary(r.findings) == {("stream", "dropped", "chunks.system_fingerprint", "warn")}


def test_cross_dialect_stream_maps_finish_and_events() -> None:
    r = analyze_exchange(stream_exchange("chat", "messages"))
    stream = [f for f in r.findings if f.direction == "stream"]
    assert {(f.kind, f.path) for f in stream} >= {("renamed", "finish_reason"), ("renamed", "events.end")}
    assert all(f.severity == "info" for f in stream)
    assert r.summary.stream_summary is not None and r.summary.stream_summary.finish_mapped


def _plain(headers_client: dict[str, str], headers_up: dict[str, str]) -> Exchange:
    body = client_body("chat", 1)
    return make_exchange(gateway="gw", case_id="c", dialect="chat", upstream="openai", body=body, upstream_dialect="chat",
                         upstream_body=copy.deepcopy(body),
                         answer=MockAnswer(status=200, body=answer_body("chat", TEXT, USAGE)),
                         client_response=ClientResponse(status=200, body=answer_body("chat", TEXT, USAGE)),
                         client_headers=headers_client, upstream_headers=headers_up)


def test_headers_credential_forwarded_verbatim_is_reported_even_without_kept() -> None:
    key = "Bearer " + redaction_marker("sk-client-canary-123456")
    r = analyze_exchange(_plain({"authorization": key, "x-gwl-trace": "gwl-trace-1"},
                                {"authorization": key, "x-gwl-trace": "gwl-trace-1"}))
    assert summary(r.findings) == {("headers", "kept", "authorization", "warn")}


def test_headers_credential_replaced_and_custom_header_dropped() -> None:
    # Header policy (analyze/headers.py): the gateway's own key instead of the client's is no finding,
    # nor is the other provider's header left out; a dropped openai-beta to an OpenAI upstream is.
    r = analyze_exchange(_plain({"authorization": "Bearer " + redaction_marker("sk-client-canary-123456"),
                                 "anthropic-beta": "gwl-beta", "openai-beta": "assistants=v2"},
                                {"x-api-key": redaction_marker("sk-gateway-own-999999")}))
    got = {(f.kind, f.path, f.to_path, f.severity) for f in r.findings if f.direction == "headers"}
    assert got == {("dropped", "openai-beta", None, "warn")}
    kept = analyze_exchange(_plain({"authorization": "Bearer " + redaction_marker("sk-client-canary-123456")},
                                   {"x-api-key": redaction_marker("sk-gateway-own-999999")}), include_kept=True)
    assert {(f.kind, f.path, f.to_path, f.severity) for f in kept.findings if f.direction == "headers"} == {
        ("changed", "authorization", "x-api-key", "info")}


def test_rejected_names_the_field_and_scores_half() -> None:
    body = {**client_body("chat", 1), "top_k": 40}
    ex = make_exchange(gateway="gw", case_id="c", dialect="chat", upstream="openai", body=body, upstream_dialect=None,
                       upstream_body=None, answer=None,
                       client_response=ClientResponse(status=400, body={"error": {"message": "Unsupported parameter: top_k"}}))
    r = analyze_exchange(ex)
    assert [(f.kind, f.path, f.upstream_index) for f in r.findings] == [("rejected", "top_k", None)]
    assert r.summary.outcome == "rejected" and r.summary.score == 50.0
    assert r.fields["top_k"] == "rejected 400"
    assert r.fields["temperature"] == "no upstream call 400"


def test_4xx_naming_no_field_is_no_upstream_call() -> None:
    ex = make_exchange(gateway="gw", case_id="c", dialect="chat", upstream="openai", body=client_body("chat", 1),
                       upstream_dialect=None, upstream_body=None, answer=None,
                       client_response=ClientResponse(status=401, body={"error": {"message": "bad gateway key"}}))
    r = analyze_exchange(ex)
    assert r.findings == [] and r.summary.outcome == "no_upstream_call" and r.summary.score == 0.0


def test_unsupported_exchange_is_excluded() -> None:
    ex = Exchange(id="gw/c/openai", case_id="c", gateway="gw", dialect="responses", stream=False, upstream="anthropic",
                  status="unsupported", unsupported_reason="no responses route")
    r = analyze_exchange(ex)
    assert r.findings == [] and r.summary.outcome == "unsupported" and r.summary.score is None


def test_retry_is_counted_once_and_status_mapping_reported() -> None:
    body = client_body("chat", 1)
    up = copy.deepcopy(body)
    up.pop("top_p")
    first = make_exchange(gateway="gw", case_id="c", dialect="chat", upstream="openai", body=body, upstream_dialect="chat",
                          upstream_body=up, answer=MockAnswer(status=429, body={"error": {"message": "slow down"}}),
                          client_response=None).upstream_requests
    ex = make_exchange(gateway="gw", case_id="c", dialect="chat", upstream="openai", body=body, upstream_dialect="chat",
                       upstream_body=up, answer=MockAnswer(status=500, body={"error": {"message": "boom gwl"}}),
                       client_response=ClientResponse(status=502, body={"error": {"message": "boom gwl"}}),
                       extra_upstream=first)
    r = analyze_exchange(ex)
    drops = [f for f in r.findings if f.kind == "dropped" and f.path == "top_p"]
    assert [f.upstream_index for f in drops] == [0, 1]
    assert ("response", "changed", "(status)", "info") in summary(r.findings)  # 500 -> 502: same class
    assert r.summary.score == 75.0  # one error, counted once across the retry


def test_passthrough_route_promotes_info_to_warn() -> None:
    body = client_body("chat", 1)
    up = {**copy.deepcopy(body), "store": False}
    ex = make_exchange(gateway="gw", case_id="c", dialect="chat", upstream="openai", body=body, upstream_dialect="chat",
                       upstream_body=up, answer=MockAnswer(status=200, body=answer_body("chat", TEXT, USAGE)),
                       client_response=ClientResponse(status=200, body=answer_body("chat", TEXT, USAGE)))
    ex.passthrough = True
    r = analyze_exchange(ex)
    assert summary(r.findings) == {("request", "added", "store", "warn")}


def test_field_statuses_of_a_translation() -> None:
    body = client_body("chat", 5)
    up = translate_request("chat", "messages", body)
    up.pop("temperature")
    ex = make_exchange(gateway="gw", case_id="c", dialect="chat", upstream="anthropic", body=body, upstream_dialect="messages",
                       upstream_body=up, answer=MockAnswer(status=200, body=answer_body("messages", TEXT, USAGE)),
                       client_response=ClientResponse(status=200, body=answer_body("chat", TEXT, USAGE)))
    r = analyze_exchange(ex)
    assert r.fields["stop"] == "renamed to stop_sequences"
    assert r.fields["user"] == "moved to metadata.user_id"
    assert r.fields["temperature"] == "dropped"
    assert r.fields["top_p"] == "kept"
    assert r.fields["messages"] == "translated"


# --------------------------------------------------------------------------------------------
# Lessons from a real LiteLLM run
# --------------------------------------------------------------------------------------------


def test_tool_round_trip_chat_to_messages_is_all_translation() -> None:
    from gatewaylens.analyze.translate import Translator

    body = {"model": "m", "messages": [
        {"role": "user", "content": "Weather and time in gwl-Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_gwl_rt_5a1c", "type": "function",
             "function": {"name": "get_weather_gwl", "arguments": "{\"city\":\"gwl-Oslo\",\"unit\":\"celsius\"}"}},
            {"id": "call_gwl_rt_6b2d", "type": "function",
             "function": {"name": "get_local_time_gwl", "arguments": "{\"tz\":\"Europe/Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_gwl_rt_5a1c", "content": "{\"temp_c\": -7.3}"},
        {"role": "tool", "tool_call_id": "call_gwl_rt_6b2d", "content": "14:37 CET (gwl-time-9f2a)"}]}
    up = {"model": "m", "max_tokens": 4096, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Weather and time in gwl-Oslo?"}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "call_gwl_rt_5a1c", "name": "get_weather_gwl", "input": {"city": "gwl-Oslo", "unit": "celsius"}},
            {"type": "tool_use", "id": "call_gwl_rt_6b2d", "name": "get_local_time_gwl", "input": {"tz": "Europe/Oslo"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_gwl_rt_5a1c", "content": "{\"temp_c\": -7.3}"},
            {"type": "tool_result", "tool_use_id": "call_gwl_rt_6b2d", "content": "14:37 CET (gwl-time-9f2a)"}]}]}
    entries = Translator("request", "chat", "messages").compare(body, up)
    assert not [(e.kind, e.src_path, e.dst_path, e.message) for e in entries if e.severity != "info"]
    moved = {(e.src_path, e.dst_path) for e in entries if e.kind in ("moved", "renamed")}
    converted = {(e.src_path, e.dst_path) for e in entries if e.kind == "converted"}
    # JSON text of the arguments carried as the object itself: a conversion, not a drop + add.
    assert ("messages[1].tool_calls[0].function.arguments", "messages[1].content[0].input") in converted
    # The two tool results (two chat messages) became one Anthropic user turn.
    assert {(e.kind, e.dst_path) for e in entries if e.kind == "merged"} == {("merged", "messages[2]")}
    assert ("messages[3].tool_call_id", "messages[2].content[1].tool_use_id") in moved


def test_input_tokens_counted_with_cache_tokens_is_a_translation() -> None:
    from gatewaylens.analyze.translate import Translator

    up = {"usage": {"input_tokens": 1077, "cache_creation_input_tokens": 19, "cache_read_input_tokens": 13, "output_tokens": 47}}
    cl = {"usage": {"input_tokens": 1109, "output_tokens": 47, "total_tokens": 1156,
                    "input_tokens_details": {"cached_tokens": 13, "cache_write_tokens": 19}}}
    entries = Translator("response", "messages", "responses").compare(up, cl)
    assert not [e for e in entries if e.severity != "info"], [(e.kind, e.src_path, e.dst_path) for e in entries]
    assert any(e.src_path == "usage.input_tokens" and e.kind == "converted" for e in entries)


def test_rejection_named_in_the_upstream_dialect_and_generic_mentions() -> None:
    body = {"model": "claude-x", "max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1536},
            "messages": [{"role": "user", "content": "gwl?"}]}

    def run(message: str) -> Exchange:
        return make_exchange(gateway="gw", case_id="c", dialect="messages", upstream="openai", body=body,
                             upstream_dialect=None, upstream_body=None, answer=None,
                             client_response=ClientResponse(status=400, body={"error": {"message": message}}))

    r = analyze_exchange(run("gpt-4.1-mini doesn't support `reasoning.effort`. To drop unsupported params set drop_params"))
    assert [(f.kind, f.path) for f in r.findings] == [("rejected", "thinking.budget_tokens")]
    r = analyze_exchange(run("Unable to fetch image from URL for this model"))
    assert r.findings == [] and r.summary.outcome == "no_upstream_call"
    r = analyze_exchange(run("Invalid value for 'model': claude-x"))
    assert [(f.kind, f.path) for f in r.findings] == [("rejected", "model")]


def test_thinking_dropped_from_a_translated_stream_is_reported() -> None:
    ex = stream_exchange("chat", "messages")
    up_frames = ex.upstream_requests[0].response.frames
    assert up_frames is not None
    thinking = {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "GWL thinking: weigh it"}}
    up_frames.insert(2, sse_frames([("content_block_delta", thinking)])[0])
    r = analyze_exchange(ex)
    assert ("stream", "dropped", "reasoning", "warn") in summary(r.findings)
