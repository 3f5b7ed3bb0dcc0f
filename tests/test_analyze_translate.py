"""Translation maps of hand-made body pairs with known translations: each kind, each dialect pair."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gatewaylens.analyze.models import Finding, FindingRow
from gatewaylens.analyze.synthetic import client_body, translate_request
from gatewaylens.analyze.translate import Entry, Translator


def non_kept(entries: list[Entry]) -> set[tuple[str, str | None, str | None, str]]:
    return {(e.kind, e.src_path, e.dst_path, e.severity) for e in entries if e.kind != "kept"}


def req(src: str, dst: str, before: Any, after: Any, **kw: Any) -> list[Entry]:
    return Translator("request", src, dst, **kw).compare(before, after)  # type: ignore[arg-type]


BASE_CHAT = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "You are gwl-sys-7781."}, {"role": "user", "content": "Say gwl-hello-42"}],
    "max_tokens": 137, "temperature": 0.37, "top_p": 0.83, "stop": ["GWL_STOP_A"], "user": "gwl-user-5521",
}


def test_finding_row_has_the_fields_of_finding() -> None:
    assert list(FindingRow.__slots__) == list(Finding.model_fields)
    row = FindingRow("g", "c", "chat", False, "openai", "request", "dropped", "p", None, 1, None, "warn", "m",
                     "g/c/openai", "", 0, None)
    assert list(row.as_dict()) == list(Finding.model_fields)
    assert row.to_model().model_dump() == row.as_dict()


# --------------------------------------------------------------------------------------------
# Each kind
# --------------------------------------------------------------------------------------------


def test_kept_identity_lists_every_leaf_and_nothing_else() -> None:
    entries = req("chat", "chat", BASE_CHAT, copy.deepcopy(BASE_CHAT), include_kept=True)
    assert {e.kind for e in entries} == {"kept"}
    assert {e.src_path for e in entries} == {
        "model", "messages[0].role", "messages[0].content", "messages[1].role", "messages[1].content",
        "max_tokens", "temperature", "top_p", "stop[0]", "user"}
    assert req("chat", "chat", BASE_CHAT, copy.deepcopy(BASE_CHAT)) == []


def test_renamed_known_translation_is_info() -> None:
    up = copy.deepcopy(BASE_CHAT)
    up["max_completion_tokens"] = up.pop("max_tokens")
    assert non_kept(req("chat", "chat", BASE_CHAT, up)) == {("renamed", "max_tokens", "max_completion_tokens", "info")}


def test_rename_to_a_name_the_upstream_dialect_lacks_is_suspicious() -> None:
    body = client_body("messages", 1)
    up = copy.deepcopy(body)
    up["max_completion_tokens"] = up.pop("max_tokens")
    assert non_kept(req("messages", "messages", body, up)) == {("renamed", "max_tokens", "max_completion_tokens", "warn")}


def test_unknown_rename_of_a_distinctive_value_is_warn() -> None:
    body = {"model": "m", "gwl_custom_field": "gwl-distinct-value-1"}
    up = {"model": "m", "gwl_renamed_field": "gwl-distinct-value-1"}
    assert non_kept(req("chat", "chat", body, up)) == {("renamed", "gwl_custom_field", "gwl_renamed_field", "warn")}


def test_moved_system_prompt_into_messages() -> None:
    body = client_body("messages", 3)
    up = translate_request("messages", "chat", body)
    got = non_kept(req("messages", "chat", body, up))
    assert ("moved", "system", "messages[0].content", "info") in got
    assert ("moved", "messages[0]", "messages[1]", "info") in got  # the conversation shifted by one


def test_reshape_is_a_conversion_and_a_sampling_change_is_an_error() -> None:
    up = copy.deepcopy(BASE_CHAT)
    up["stop"] = "GWL_STOP_A"
    up["top_p"] = 0.5
    assert non_kept(req("chat", "chat", BASE_CHAT, up)) == {
        ("converted", "stop", "stop", "info"),
        ("changed", "top_p", "top_p", "error"),
    }


def test_dropped_severity_follows_meaning() -> None:
    body = {**BASE_CHAT, "gwl_unknown_field": "gwl-unknown-1", "n": 1, "logit_bias": None}
    up = copy.deepcopy(body)
    for k in ("temperature", "gwl_unknown_field", "n", "logit_bias"):
        up.pop(k)
    assert non_kept(req("chat", "chat", body, up)) == {
        ("dropped", "temperature", None, "error"),
        ("dropped", "gwl_unknown_field", None, "warn"),
        ("dropped", "n", None, "info"),  # the API default
        ("dropped", "logit_bias", None, "info"),  # explicit null
    }


def test_added_default_is_info() -> None:
    up = {**copy.deepcopy(BASE_CHAT), "store": False}
    assert non_kept(req("chat", "chat", BASE_CHAT, up)) == {("added", None, "store", "info")}


def test_non_distinctive_values_are_not_tracked_to_random_places() -> None:
    body = {"model": "m", "n": 2, "stream": True, "role_hint": "user"}
    up = {"model": "m", "seed": 2, "store": True, "speaker": "user"}
    got = non_kept(req("chat", "chat", body, up))
    assert {k for k, *_ in got} == {"dropped", "added"}
    assert {(k, s or d) for k, s, d, _ in got} == {
        ("dropped", "n"), ("dropped", "stream"), ("dropped", "role_hint"),
        ("added", "seed"), ("added", "store"), ("added", "speaker")}


def test_known_translation_preferred_over_an_equal_value_elsewhere() -> None:
    body = {"model": "m", "max_tokens": 512}
    up = {"model": "m", "gwl_budget": 512, "max_completion_tokens": 512}
    assert non_kept(req("chat", "chat", body, up)) == {
        ("renamed", "max_tokens", "max_completion_tokens", "info"), ("added", None, "gwl_budget", "info")}


def test_true_is_not_one() -> None:
    assert non_kept(req("chat", "chat", {"logprobs": True}, {"logprobs": 1})) == {("changed", "logprobs", "logprobs", "warn")}


def test_list_alignment_follows_an_inserted_item() -> None:
    a = [{"role": "user", "content": "gwl-a"}, {"role": "assistant", "content": "gwl-b"}]
    b = [{"role": "system", "content": "gwl-s"}, *a]
    assert non_kept(req("chat", "chat", {"messages": a}, {"messages": b})) == {
        ("added", None, "messages[0]", "info"),
        ("moved", "messages[0]", "messages[1]", "info"), ("moved", "messages[1]", "messages[2]", "info")}
    assert non_kept(req("chat", "chat", {"messages": b}, {"messages": a})) == {
        ("dropped", "messages[0]", None, "error"),
        ("moved", "messages[1]", "messages[0]", "info"), ("moved", "messages[2]", "messages[1]", "info")}


def test_list_alignment_reports_a_duplicated_item() -> None:
    a = [{"role": "user", "content": "gwl-a"}]
    b = [{"role": "user", "content": "gwl-a"}, {"role": "user", "content": "gwl-a"}]
    assert non_kept(req("chat", "chat", {"messages": a}, {"messages": b})) == {("added", None, "messages[1]", "info")}


# --------------------------------------------------------------------------------------------
# Dialect pairs
# --------------------------------------------------------------------------------------------


def test_chat_to_chat_identity_with_one_drop() -> None:
    body = client_body("chat", 2)
    up = copy.deepcopy(body)
    up.pop("top_p")
    assert non_kept(req("chat", "chat", body, up)) == {("dropped", "top_p", None, "error")}


def test_messages_to_messages_identity_with_cache_control_dropped() -> None:
    body = client_body("messages", 2)
    body["system"] = [{"type": "text", "text": "You are gwl-sys-2.", "cache_control": {"type": "ephemeral"}}]
    up = copy.deepcopy(body)
    del up["system"][0]["cache_control"]
    assert non_kept(req("messages", "messages", body, up)) == {("dropped", "system[0].cache_control", None, "warn")}


def test_responses_to_responses_drops_client_metadata() -> None:
    body = {**client_body("responses", 4), "metadata": {"client_metadata": "gwl-meta-4"}, "store": False}
    up = copy.deepcopy(body)
    up.pop("metadata")
    up.pop("max_output_tokens")
    assert non_kept(req("responses", "responses", body, up)) == {
        ("dropped", "metadata", None, "warn"), ("dropped", "max_output_tokens", None, "error")}


def test_chat_to_messages_faithful_translation() -> None:
    body = client_body("chat", 5)
    up = translate_request("chat", "messages", body)
    assert non_kept(req("chat", "messages", body, up)) == {
        ("moved", "messages[1]", "messages[0]", "info"),
        ("moved", "messages[0].content", "system", "info"),
        ("converted", "messages[1].content", "messages[0].content", "info"),
        ("renamed", "stop", "stop_sequences", "info"),
        ("moved", "user", "metadata.user_id", "info"),
    }


def test_messages_to_chat_faithful_translation() -> None:
    body = client_body("messages", 6)
    up = translate_request("messages", "chat", body)
    assert non_kept(req("messages", "chat", body, up)) == {
        ("moved", "messages[0]", "messages[1]", "info"),
        ("moved", "system", "messages[0].content", "info"),
        ("renamed", "stop_sequences", "stop", "info"),
        ("moved", "metadata.user_id", "user", "info"),
    }


def test_responses_to_chat_faithful_translation_and_a_loss() -> None:
    body = {**client_body("responses", 7), "top_k": 40}
    up = translate_request("responses", "chat", client_body("responses", 7))
    assert non_kept(req("responses", "chat", body, up)) == {
        ("moved", "instructions", "messages[0].content", "info"),
        ("moved", "input", "messages[1].content", "info"),
        ("renamed", "max_output_tokens", "max_tokens", "info"),
        ("dropped", "top_k", None, "warn"),
    }


def test_chat_to_messages_tools_and_tool_choice() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "gwl weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather_gwl", "description": "Weather gwl",
                                                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required"}
    up = {"model": "m", "messages": [{"role": "user", "content": "gwl weather?"}], "max_tokens": 4096,
          "tools": [{"name": "get_weather_gwl", "description": "Weather gwl",
                     "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
          "tool_choice": {"type": "any"}}
    assert non_kept(req("chat", "messages", body, up)) == {
        ("moved", "tools[0].function.name", "tools[0].name", "info"),
        ("moved", "tools[0].function.description", "tools[0].description", "info"),
        ("moved", "tools[0].function.parameters", "tools[0].input_schema", "info"),
        ("converted", "tool_choice", "tool_choice", "info"),
        ("added", None, "max_tokens", "info"),
    }


@pytest.mark.parametrize(("choice_in", "choice_out", "severity"), [
    ({"type": "function", "function": {"name": "get_weather_gwl"}}, {"type": "tool", "name": "get_weather_gwl"}, "info"),
    ("auto", {"type": "auto"}, "info"),
    ("required", {"type": "auto"}, "error"),
])
def test_tool_choice_forms(choice_in: Any, choice_out: Any, severity: str) -> None:
    got = non_kept(req("chat", "messages", {"tool_choice": choice_in}, {"tool_choice": choice_out}))
    kinds = {(k, sev) for k, _s, _d, sev in got}
    assert severity in {sev for _k, sev in kinds}
    assert all(sev == severity for _k, sev in kinds)


# --------------------------------------------------------------------------------------------
# Response side
# --------------------------------------------------------------------------------------------


def test_response_cross_dialect_usage_and_finish_reason_are_translations() -> None:
    from gatewaylens.analyze.synthetic import answer_body

    up = answer_body("messages", "Hello gwl answer", (1234, 567))
    cl = answer_body("chat", "Hello gwl answer", (1234, 567))
    got = Translator("response", "messages", "chat").compare(up, cl)
    by_kind = {(e.kind, e.src_path, e.dst_path): e.severity for e in got}
    assert by_kind[("renamed", "usage.input_tokens", "usage.prompt_tokens")] == "info"
    assert by_kind[("renamed", "usage.output_tokens", "usage.completion_tokens")] == "info"
    assert by_kind[("converted", "stop_reason", "choices[0].finish_reason")] == "info"
    assert by_kind[("moved", "content[0].text", "choices[0].message.content")] == "info"
    assert not [e for e in got if e.severity != "info"]


def test_response_same_dialect_losses() -> None:
    from gatewaylens.analyze.synthetic import answer_body

    up = answer_body("chat", "Hello gwl answer", (1234, 567))
    cl = copy.deepcopy(up)
    cl.pop("system_fingerprint")
    cl["usage"]["completion_tokens"] = 999
    del cl["usage"]["total_tokens"]
    assert non_kept(Translator("response", "chat", "chat").compare(up, cl)) == {
        ("dropped", "system_fingerprint", None, "info"),
        ("changed", "usage.completion_tokens", "usage.completion_tokens", "error"),
        ("dropped", "usage.total_tokens", None, "error"),
    }


def test_responses_answer_echo_is_not_the_reply_text() -> None:
    """Top-level ``text`` of a Responses answer is the format echo: losing it is not losing the reply."""
    upstream = {"id": "resp_1", "output": [{"type": "message", "content": [{"type": "output_text", "text": "GWL reply 42"}]}],
                "text": {"format": {"type": "text"}, "verbosity": "medium"}}
    echo_lost = {k: v for k, v in upstream.items() if k != "text"}
    entries = Translator("response", "responses", "responses").compare(upstream, echo_lost)
    dropped = [e for e in entries if e.kind == "dropped"]
    assert dropped
    assert all(e.severity != "error" for e in dropped)
    reply_lost = copy.deepcopy(upstream)
    reply_lost["output"][0]["content"][0].pop("text")
    entries = Translator("response", "responses", "responses").compare(upstream, reply_lost)
    assert any(e.kind == "dropped" and e.severity == "error" and (e.src_path or "").endswith("content[0].text")
               for e in entries)
