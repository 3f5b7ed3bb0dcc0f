"""Analyze v2 (issue 11): translations named for exactly what they are, severity by effect.

Each body pair below is the shape a real gateway produced (named per test); the assertions are
about what analyze says of it, so each can fail if the classification regresses.
"""

from __future__ import annotations

from typing import Any

from gatewaylens.analyze.translate import Entry, Translator


def _entries(side: str, src: str, dst: str, before: Any, after: Any) -> list[Entry]:
    return Translator(side, src, dst).compare(before, after)  # type: ignore[arg-type]


def _loud(entries: list[Entry]) -> list[tuple[str, str | None, str | None, str]]:
    return [(e.kind, e.src_path, e.dst_path, e.severity) for e in entries if e.severity != "info"]


def test_ref_rewritten_inside_a_forced_tool_schema_is_changed_not_drop_plus_add() -> None:
    # LiteLLM 1.106.12, recorded litellm-chat/bug-litellm-7755/anthropic: the json_schema becomes
    # the json_tool_call input_schema and "#/$defs/x" arrives as "/$defs/x".
    schema = {"type": "object", "required": ["events"],
              "properties": {"events": {"type": "array", "items": {"$ref": "#/$defs/gwl_event"}}},
              "$defs": {"gwl_event": {"type": "object", "properties": {"name": {"type": "string"}}}}}
    after_schema = {**schema, "properties": {"events": {"type": "array", "items": {"$ref": "/$defs/gwl_event"}}}}
    client = {"model": "m", "messages": [{"role": "user", "content": "hi gwl"}],
              "response_format": {"type": "json_schema", "json_schema": {"name": "gwl_events", "schema": schema}}}
    upstream = {"model": "m", "max_tokens": 4096, "messages": [{"role": "user", "content": "hi gwl"}],
                "tools": [{"name": "json_tool_call", "input_schema": after_schema}],
                "tool_choice": {"type": "tool", "name": "json_tool_call"}}
    entries = _entries("request", "chat", "messages", client, upstream)
    changed = [e for e in entries if e.kind == "changed"]
    assert [(e.src_path, e.dst_path, e.before, e.after, e.severity) for e in changed] == [(
        "response_format.json_schema.schema.properties.events.items.$ref",
        "tools[0].input_schema.properties.events.items.$ref", "#/$defs/gwl_event", "/$defs/gwl_event", "error")]
    assert not [e for e in entries if e.kind == "dropped" and "$ref" in (e.src_path or "")]
    # The gateway's forcing of its own tool is its emulation, not an injected choice.
    choice = next(e for e in entries if e.dst_path == "tool_choice")
    assert choice.severity == "info" and "json_tool_call" in choice.message


def test_image_block_reshaped_is_one_conversion() -> None:
    # Portkey 1.15.2 chat -> anthropic (recorded portkey/images-chat/anthropic): a data URL
    # becomes source {type: base64, media_type, data}; `detail` has no Anthropic place.
    data = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
    client = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}", "detail": "low"}},
        {"type": "text", "text": "what is this gwl image?"}]}]}
    upstream = {"model": "m", "max_tokens": 4096, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "text", "text": "what is this gwl image?"}]}]}
    entries = _entries("request", "chat", "messages", client, upstream)
    conv = [e for e in entries if e.kind == "converted" and e.src_path == "messages[0].content[0].image_url"]
    assert len(conv) == 1 and conv[0].dst_path == "messages[0].content[0].source" and conv[0].severity == "info"
    assert _loud(entries) == [("dropped", "messages[0].content[0].image_url.detail", None, "warn")]


def test_thinking_budget_sent_as_a_foreign_reasoning_object_is_a_warned_conversion() -> None:
    # claude-code-router 2.0.0 dist/cli.js: thinking {budget_tokens} -> reasoning {effort, enabled}
    # in a Chat Completions body (OpenRouter's form; OpenAI Chat has reasoning_effort).
    client = {"model": "m", "max_tokens": 2743, "thinking": {"type": "enabled", "budget_tokens": 1537},
              "messages": [{"role": "user", "content": "prime gwl?"}]}
    upstream = {"model": "m", "max_tokens": 2743, "reasoning": {"effort": "medium", "enabled": True},
                "messages": [{"role": "user", "content": "prime gwl?"}]}
    entries = _entries("request", "messages", "chat", client, upstream)
    assert not [e for e in entries if e.kind == "dropped" and e.src_path == "thinking"]
    conv = [e for e in entries if e.kind == "converted" and (e.src_path or "").startswith("thinking")]
    assert len(conv) == 1 and conv[0].severity == "warn" and "reasoning_effort" in conv[0].message


def test_effort_to_budget_in_the_target_form_is_an_info_conversion() -> None:
    # LiteLLM 1.106.12 _map_reasoning_effort: Responses reasoning.effort medium -> thinking budget 2048.
    client = {"model": "m", "input": "prime gwl?", "reasoning": {"effort": "medium"}, "max_output_tokens": 2389}
    upstream = {"model": "m", "max_tokens": 2389, "thinking": {"type": "enabled", "budget_tokens": 2048},
                "messages": [{"role": "user", "content": [{"type": "text", "text": "prime gwl?"}]}]}
    entries = _entries("request", "responses", "messages", client, upstream)
    assert not _loud(entries)
    assert any(e.kind == "converted" and (e.src_path or "").startswith("reasoning") for e in entries)


def test_injected_content_block_is_an_error_and_an_empty_one_a_warning() -> None:
    # claude-code-router 2.0.0 convertOpenAIResponseToAnthropic: `annotations: []` is truthy in JS.
    upstream = {"id": "chatcmpl-gwl1", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "finish_reason": "stop",
         "message": {"role": "assistant", "content": "The gwl reply text, long enough.", "annotations": []}}]}
    client = {"id": "chatcmpl-gwl1", "type": "message", "role": "assistant", "model": "m", "content": [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": ""}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "text", "text": "The gwl reply text, long enough."}], "stop_reason": "end_turn"}
    entries = _entries("response", "chat", "messages", upstream, client)
    added = {(e.dst_path, e.severity) for e in entries if e.kind == "added"}
    assert ("content[0]", "error") in added and ("content[1]", "warn") in added
    assert not [e for e in entries if e.kind == "added" and (e.dst_path or "").startswith("content[0].")]


def test_a_dropped_list_item_is_one_finding_at_the_item() -> None:
    # claude-code-router 2.0.0 to a Responses upstream (recorded roundtrip-messages): the assistant
    # text before a tool_use is not sent.
    client = {"model": "m", "max_tokens": 300, "messages": [
        {"role": "user", "content": "weather gwl?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Let me check (pre-tool text 1b4c)."},
                                          {"type": "tool_use", "id": "toolu_gwl_1", "name": "get_weather_gwl",
                                           "input": {"city": "Kiruna"}}]}]}
    upstream = {"model": "m", "max_output_tokens": 300, "input": [
        {"role": "user", "content": "weather gwl?"},
        {"type": "function_call", "call_id": "toolu_gwl_1", "name": "get_weather_gwl", "arguments": "{\"city\":\"Kiruna\"}"}]}
    entries = _entries("request", "messages", "responses", client, upstream)
    drops = [(e.src_path, e.severity) for e in entries if e.kind == "dropped"]
    assert drops == [("messages[1].content[0]", "error")]


def test_injected_behaviour_value_is_warned_and_a_required_default_is_not() -> None:
    # claude-code-router 2.0.0 adds parallel_tool_calls: false to every Responses request.
    client = {"model": "m", "max_tokens": 211, "messages": [{"role": "user", "content": "lake gwl?"}]}
    upstream = {"model": "m", "max_output_tokens": 211, "input": [{"role": "user", "content": "lake gwl?"}],
                "parallel_tool_calls": False, "stream": False}
    entries = _entries("request", "messages", "responses", client, upstream)
    assert _loud(entries) == [("added", None, "parallel_tool_calls", "warn")]


def test_provider_extension_not_forwarded_in_the_same_dialect_is_minor() -> None:
    # Portkey 1.15.2 chat -> openai drops top_k (recorded portkey/sampling-chat-top-k-extension/openai).
    client = {"model": "m", "top_k": 41, "messages": [{"role": "user", "content": "hi gwl"}]}
    upstream = {"model": "m", "messages": [{"role": "user", "content": "hi gwl"}]}
    assert _loud(_entries("request", "chat", "chat", client, upstream)) == [("dropped", "top_k", None, "warn")]


def test_store_false_dropped_for_anthropic_is_no_loss_but_store_true_is() -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "hi gwl"}]}
    up = {**base, "max_tokens": 4096}
    assert not _loud(_entries("request", "chat", "messages", {**base, "store": False}, up))
    assert _loud(_entries("request", "chat", "messages", {**base, "store": True}, up)) == [("dropped", "store", None, "error")]


def _recorded(exchange_id: str) -> Any:
    import json

    from gatewaylens.capture.models import Exchange
    from tests.support.ground_truth import DATA_DIR

    for f in DATA_DIR.glob("*.jsonl"):
        for line in f.read_text(encoding="utf-8").split("\n"):
            if not line:
                continue
            if json.loads(line)["id"] == exchange_id:
                return Exchange.model_validate_json(line)
    raise AssertionError(exchange_id)


def test_stack_trace_in_an_error_answer_is_leaked_unless_the_upstream_sent_it() -> None:
    from gatewaylens.analyze.leaks import leak_entries

    # claude-code-router 2.0.0 answers a 429 with err.stack (recorded err-429-messages-stream).
    ex = _recorded("claude-code-router/err-429-messages-stream/openai")
    leaks = leak_entries(ex)
    assert [(e.kind, e.severity) for e in leaks] == [("leaked", "error")]
    assert "stack trace" in leaks[0].message and "dist/cli.js" in str(leaks[0].after)
    # The same text relayed from the upstream's own answer is the upstream's, not the gateway's.
    assert ex.client_response is not None and ex.upstream_requests
    ex.upstream_requests[0].response.body = ex.client_response.body
    assert leak_entries(ex) == []
    # Portkey relays the same 429 without internals (recorded portkey/err-429-chat/openai).
    assert leak_entries(_recorded("portkey/err-429-chat/openai")) == []


def test_gateway_echo_field_dropped_from_history_is_no_loss() -> None:
    # LiteLLM 1.106.12 answers assistant messages with provider_specific_fields; the client echoes
    # the message back on the next turn and LiteLLM strips the field before calling Anthropic.
    client = {"model": "m", "messages": [
        {"role": "user", "content": "hi gwl"},
        {"role": "assistant", "content": "hello gwl back", "provider_specific_fields": {"citations": None, "x": 1}},
        {"role": "user", "content": "again gwl"}]}
    upstream = {"model": "m", "max_tokens": 4096, "messages": [
        {"role": "user", "content": "hi gwl"}, {"role": "assistant", "content": "hello gwl back"},
        {"role": "user", "content": "again gwl"}]}
    assert not _loud(_entries("request", "chat", "messages", client, upstream))


def test_previous_response_id_mapped_back_is_a_conversion_not_a_change() -> None:
    from gatewaylens.analyze.conversations import with_conversation
    from gatewaylens.analyze.engine import ExchangeResult
    from gatewaylens.analyze.models import ExchangeSummary, FindingRow

    def row(direction: str, kind: str, severity: str) -> FindingRow:
        return FindingRow(gateway="litellm", case_id="c", dialect="responses", stream=False, upstream="openai",
                          direction=direction, kind=kind, path="previous_response_id",  # type: ignore[arg-type]
                          to_path=None, before="resp_litellm_1", after="resp_gwl_1", severity=severity,  # type: ignore[arg-type]
                          message="m")

    summary = ExchangeSummary(id="x", gateway="litellm", case_id="c", dialect="responses", stream=False,
                              upstream="openai", variant="", status="ok", client_status=200, upstream_calls=1,
                              outcome="translated")
    result = ExchangeResult(None, [row("request", "changed", "error")], summary)  # type: ignore[arg-type]
    with_conversation(result, [row("conversation", "converted", "info")])
    assert [(f.direction, f.kind, f.severity) for f in result.findings] == [
        ("request", "converted", "info"), ("conversation", "converted", "info")]
    # Without the cross-turn proof the change stays an error.
    alone = ExchangeResult(None, [row("request", "changed", "error")], summary)  # type: ignore[arg-type]
    with_conversation(alone, [row("conversation", "changed", "error")])
    assert alone.findings[0].severity == "error"


def test_empty_content_dropped_is_no_loss_but_json_mode_is() -> None:
    base = [{"role": "user", "content": "hi gwl"}]
    client = {"model": "m", "messages": [*base, {"role": "assistant", "content": [
        {"type": "text", "text": "hello gwl back"}, {"type": "text", "text": ""}]}]}
    upstream = {"model": "m", "messages": [*base, {"role": "assistant", "content": [{"type": "text", "text": "hello gwl back"}]}]}
    assert not _loud(_entries("request", "messages", "chat", client, upstream))
    # {"type": "json_object"} is not an empty block: dropping it loses JSON mode (ground truth, LiteLLM).
    fmt = {"model": "m", "messages": base, "response_format": {"type": "json_object"}}
    assert _loud(_entries("request", "chat", "messages", fmt, {"model": "m", "max_tokens": 1, "messages": base})) == [
        ("dropped", "response_format", None, "error")]


def test_history_turns_pair_by_their_text_not_by_shared_keywords() -> None:
    # claude-code-router 2.0.0 (dist/cli.js:582, transformRequestOut; recorded
    # claude-code-router/conv-messages-cache-history/openai/t2): the system block list becomes
    # messages[0] with role system, and an assistant turn's text blocks are joined into a string.
    # The assistant turn shares only `type: text` and `ephemeral` with the system message, but its
    # whole text with the upstream's assistant turn: it must pair with that one.
    system = [{"type": "text", "text": "You answer about Norwegian geography (gwl-sys).",
               "cache_control": {"type": "ephemeral"}}]
    reply = "Gatewaylens mock reply: the quick brown fox jumps over 7 lazy dogs."
    follow = [{"type": "text", "text": "How long is it? (gwl-followup)", "cache_control": {"type": "ephemeral"}}]
    client = {"model": "m", "max_tokens": 967, "system": system, "messages": [
        {"role": "user", "content": "[gwl:x] Name one long fjord."},
        {"role": "assistant", "content": [{"type": "text", "text": reply, "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": follow}]}
    upstream = {"model": "m", "max_tokens": 967, "messages": [
        {"role": "system", "content": system},
        {"role": "user", "content": "[gwl:x] Name one long fjord."},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": follow}]}
    entries = _entries("request", "messages", "chat", client, upstream)
    assert not [e for e in entries if e.kind in ("dropped", "changed") and e.severity != "info"], _loud(entries)
    system_entry = next(e for e in entries if e.src_path == "system")
    assert system_entry.kind == "moved" and system_entry.dst_path == "messages[0].content"
    # The flattened assistant turn is carried, and its lost cache marker is named, not hidden.
    flat = next(e for e in entries if e.src_path == "messages[1].content")
    assert (flat.kind, flat.dst_path, flat.severity) == ("converted", "messages[2].content", "warn")
    assert "not carried: cache_control" in flat.message


def test_usage_all_zero_is_one_finding_not_one_per_counter() -> None:
    # claude-code-router 2.0.0, recorded claude-code-router/basic-messages-stream/openai/responses:
    # the client's message_delta carries input 0 / output 0 whatever the upstream counted.
    from gatewaylens.analyze import usage

    up = {"input_tokens": 1067, "output_tokens": 47, "total_tokens": 1114,
          "input_tokens_details": {"cached_tokens": 13}}
    zero = {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0}
    entries = usage.compare(up, "responses", zero, "messages")
    loud = [e for e in entries if e.severity != "info"]
    assert [(e.kind, e.src_path, e.dst_path, e.severity) for e in loud] == [("changed", "usage", "usage", "error")]
    assert "input tokens 1067" in loud[0].message and "output tokens 47" in loud[0].message
    # One counter wrong among real ones stays a finding at that counter.
    partial = usage.compare(up, "responses", {"input_tokens": 1054, "output_tokens": 0,
                                               "cache_read_input_tokens": 13}, "messages")
    assert [(e.dst_path, e.severity) for e in partial if e.severity != "info"] == [("usage.output_tokens", "error")]


def test_finish_reason_beside_carried_text_is_compared_not_dropped() -> None:
    # Portkey 1.15.2 (build/start-server.js: its Anthropic stop-reason map has no 'refusal'),
    # recorded portkey/edge-chat-refusal-anthropic/anthropic: `refusal` arrives as `stop`.  The
    # text was carried into choices[0].message, and the finish reason beside it must still be
    # paired with stop_reason: one changed value, not "stop_reason dropped" + "finish_reason added".
    text = "I can't help with that request (gwl-refusal-7d)."
    up = {"id": "m", "type": "message", "role": "assistant", "model": "c", "content": [{"type": "text", "text": text}],
          "stop_reason": "refusal", "stop_sequence": None, "usage": {"input_tokens": 1153, "output_tokens": 29}}
    client = {"id": "m", "object": "chat.completion", "created": 1, "model": "c",
              "choices": [{"message": {"role": "assistant", "content": text}, "index": 0, "logprobs": None,
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 1153, "completion_tokens": 29, "total_tokens": 1182}}
    entries = _entries("response", "messages", "chat", up, client)
    assert _loud(entries) == [("changed", "stop_reason", "choices[0].finish_reason", "error")]
    # A faithful mapping of the same pair is an info conversion.
    faithful = _entries("response", "messages", "chat", {**up, "stop_reason": "end_turn"}, client)
    assert _loud(faithful) == []
