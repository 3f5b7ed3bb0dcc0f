"""Severity by effect: one written policy for what is an ``error``, a ``warn`` and an ``info``.

* ``error``: meaning the client sent, or will receive, is lost or altered: conversation content,
  the system prompt, tools and tool choice, output limits, sampling values, stop sequences,
  structured-output schemas, conversation state (``previous_response_id``, ``store``), the reply
  text, tool calls, the finish reason, usage numbers.
* ``warn``: lossy but minor or recoverable: prompt-caching hints, metadata and user ids, schema
  strictness flags, image detail, an error flag on a tool result, thinking history the target
  cannot take, a parameter the target dialect has no equivalent for, a type coercion the API may
  accept, ids rewritten.
* ``info``: faithful translations (renamed, moved, converted), values equal to the API default,
  response echoes of request settings, volatile fields (ids, timestamps), the gateway's own
  artefacts it strips again on the way back, headers of one provider not forwarded to another.

The README's severity table is this module in prose; tests pin each row.
"""

from __future__ import annotations

import json
from typing import Any

from gatewaylens.analyze.models import Severity
from gatewaylens.analyze.paths import last_key, root
from gatewaylens.analyze.values import strict_equal
from gatewaylens.dialects import REQUEST_EQUIVALENCES, generic_path

#: Order of severities, lowest first.
RANK: dict[str, int] = {"info": 0, "warn": 1, "error": 2}

# --------------------------------------------------------------------------------------------
# Paths.
# --------------------------------------------------------------------------------------------


def keys_of(path: str) -> set[str]:
    """Every key name along a dotted path (indexes stripped)."""
    return set(keys_of_ordered(path))


def keys_of_ordered(path: str) -> list[str]:
    """The key names along a dotted path in order, indexes stripped (empty for a bare index)."""
    return [part.split("[", 1)[0] for part in path.split(".")]


def last(path: str) -> str:
    return last_key(path) or ""


# --------------------------------------------------------------------------------------------
# Request side.
# --------------------------------------------------------------------------------------------

#: Request fields whose loss changes what the model does or what the client gets back.
IMPORTANT_REQUEST_ROOTS = frozenset({
    "temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens", "max_output_tokens",
    "tools", "tool_choice", "system", "instructions", "stop", "stop_sequences", "messages", "input",
    "prompt", "response_format", "text", "seed", "n", "presence_penalty", "frequency_penalty",
    "logit_bias", "logprobs", "top_logprobs", "thinking", "reasoning", "reasoning_effort",
    "parallel_tool_calls", "output_format", "modalities", "previous_response_id", "store",
    "conversation", "include", "output_config",
})

#: Keys whose loss, anywhere below an important root, is lossy but minor (``warn``).
MINOR_KEYS = frozenset({
    "cache_control", "citations", "annotations", "strict", "detail", "signature",
    "description", "title", "examples", "summary", "name", "id", "index", "status",
})

#: Keys that are API plumbing, not meaning: losing them alone is ``info``.
PLUMBING_KEYS = frozenset({"type", "object", "role"})

#: History the target cannot take in any form: thinking blocks without a signature of that
#: provider, OpenAI reasoning text on an assistant turn.  Lost across dialects: ``warn``.
FOREIGN_HISTORY_KEYS = frozenset({"thinking", "redacted_thinking", "reasoning_content", "encrypted_content", "data"})

#: Reasoning items and blocks (a provider's own, often signed, form of the model's thinking).
REASONING_ITEM_TYPES = frozenset({"reasoning", "thinking", "redacted_thinking"})

#: API defaults: a value equal to its default means the same as leaving the field out.  Keyed by
#: the last key of the path (``tools[0].function.strict``: ``strict``) or the whole top-level path.
DEFAULTS: dict[str, Any] = {
    "stream": False, "n": 1, "logprobs": False, "parallel_tool_calls": True, "strict": False,
    "presence_penalty": 0, "frequency_penalty": 0, "top_p": 1, "temperature": 1, "tool_choice": "auto",
    "truncation": "disabled", "background": False, "is_error": False, "detail": "auto", "service_tier": "auto",
    "disable_parallel_tool_use": False, "include_usage": False,
}
#: Defaults that hold only at the top level of the request (``n`` deep inside a schema is data).
_TOP_LEVEL_ONLY = frozenset({"stream", "n", "logprobs", "top_p", "temperature", "tool_choice", "truncation",
                             "background", "service_tier", "presence_penalty", "frequency_penalty", "parallel_tool_calls"})


def is_default(path: str, value: Any) -> bool:
    """An explicit null, an empty container or string, an empty content block (``{"type": "text",
    "text": ""}``), or the API's default value for this field."""
    if value is None or value == [] or value == {} or value == "":
        return True
    if isinstance(value, dict) and "type" in value and len(value) > 1 and all(
            v in (None, "", [], {}) for k, v in value.items() if k != "type"):
        return True
    key = last(path)
    if key not in DEFAULTS:
        return False
    if key in _TOP_LEVEL_ONLY and ("." in path or "[" in path):
        return False
    if "properties" in keys_of(path):
        return False  # a JSON-schema property that happens to be named `strict` is data
    return strict_equal(DEFAULTS[key], value)


def request_drop(path: str, value: Any, *, cross: bool, target_has_concept: bool | None,
                 concept: str | None, dst: str | None) -> tuple[Severity, str]:
    """Severity and message of a client request value that did not reach the upstream.

    ``cross``: the upstream speaks another dialect.  ``target_has_concept``: whether the target
    dialect has a field for this value's concept (None: the table does not know the concept)."""
    if is_default(path, value):
        return "info", "omitted: equal to the API default (the same as leaving it out)"
    if r_history(path) and last(path) in GATEWAY_ECHO_KEYS:
        return "info", f"'{last(path)}' is the gateway's own field from its earlier answer, echoed back by the client"
    r = root(path)
    key = last(path)
    nested = path != r
    if r not in IMPORTANT_REQUEST_ROOTS:
        if cross and not target_has_concept:
            return "info", f"not forwarded: the {dst} dialect has no such field"
        return "warn", "not forwarded upstream"
    if nested and key in PLUMBING_KEYS:
        return "info", "structural field not carried (its siblings were)"
    if nested and (keys_of(path) & MINOR_KEYS):
        return "warn", f"'{key}' not forwarded (minor: the rest of the item was)"
    if cross and r in ("messages", "input") and isinstance(value, dict) and value.get("type") in REASONING_ITEM_TYPES:
        return "warn", f"history the {dst} dialect cannot take (a {value.get('type')} block) was not forwarded"
    if cross and keys_of(path) & FOREIGN_HISTORY_KEYS and r in ("messages", "input"):
        return "warn", f"history the {dst} dialect cannot take ('{key}') was not forwarded"
    no_equivalent = not nested and r in _NO_EQUIVALENT_IN.get(dst or "", ())
    if not cross and no_equivalent:
        # A provider extension sent to a dialect whose API has no such field (top_k to OpenAI):
        # the real upstream would reject it, so not forwarding it is a choice, not a loss.
        return "warn", f"not forwarded: '{r}' is not part of the {dst} API (a provider extension)"
    if cross and dst == "messages" and r == "store" and value is False:
        return "info", "not forwarded: Anthropic keeps no conversation state, so store=false changes nothing there"
    if cross and (target_has_concept is False or (target_has_concept is None and no_equivalent)):
        # The target cannot take it, but the client asked for it and got no error: a silent loss
        # of meaning (ground truth: tests/data/ground_truth/expectations.json).  Only top_k, an
        # extension most OpenAI-shaped upstreams lack, is minor.
        what = concept or r
        if r == "top_k":
            return "warn", f"not forwarded: the {dst} dialect has no equivalent of '{what}'"
        return "error", (f"lost: the {dst} dialect has no equivalent of '{what}' and the gateway neither "
                         "forwarded nor rejected it")
    return "error", "lost: the upstream never received it"


#: Fields a gateway adds to its own answers that a client echoes back in the next turn's history:
#: LiteLLM 1.106.12 returns ``provider_specific_fields`` on assistant messages (litellm/types/utils.py
#: Message) and strips it again before calling the provider.
GATEWAY_ECHO_KEYS = frozenset({"provider_specific_fields"})


def r_history(path: str) -> bool:
    """The path lies in the conversation history of a request."""
    return root(path) in ("messages", "input") and "[" in path


#: Request fields whose value, injected by a gateway the client did not send, changes what the
#: model does (beyond what the target dialect requires, such as Anthropic's ``max_tokens``).
BEHAVIOUR_ROOTS = frozenset({
    "temperature", "top_p", "top_k", "parallel_tool_calls", "tool_choice", "stop", "stop_sequences", "seed",
    "presence_penalty", "frequency_penalty", "reasoning", "reasoning_effort", "thinking", "n", "truncation",
    "logit_bias", "service_tier",
})


def request_add(path: str, value: Any) -> tuple[Severity, str]:
    """Severity and message of a value the upstream received that the client never sent."""
    r = root(path)
    if path == r and r in BEHAVIOUR_ROOTS and not is_default(path, value):
        return "warn", f"injected by the gateway: {r}={_brief(value)}, which the client did not send and is not the API default"
    return "info", "added by the gateway (default or dialect requirement)"


def _brief(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def rejection(path: str, *, src: str | None, dst: str | None) -> Severity:
    """A 4xx naming a client field, answered without calling the upstream: an honest refusal
    (``info``) when the target dialect has nothing for it, a capability gap (``warn``) when the
    target could have taken it (ground truth: LiteLLM's UnsupportedParamsError for
    presence_penalty/store to Anthropic, tests/data/ground_truth/expectations.json)."""
    if dst is None or src == dst:
        return "warn"
    r = root(path)
    if path == r and r in _NO_EQUIVALENT_IN.get(dst, ()):
        return "info"
    gp = generic_path(path)
    for row in REQUEST_EQUIVALENCES:
        if gp in row.get(src or "", []):
            return "warn" if row.get(dst, []) else "info"
    return "warn"


#: Client parameters with no counterpart in a target dialect (beyond the equivalence table).
_NO_EQUIVALENT_IN: dict[str, frozenset[str]] = {
    "messages": frozenset({"frequency_penalty", "presence_penalty", "seed", "logprobs", "top_logprobs", "n",
                           "logit_bias", "modalities", "include", "prompt_cache_key", "truncation", "background",
                           "store", "previous_response_id"}),
    "chat": frozenset({"top_k", "include", "truncation", "background"}),
    "responses": frozenset({"top_k", "stop", "stop_sequences", "seed", "n", "presence_penalty", "frequency_penalty",
                            "logprobs", "logit_bias"}),
}


# --------------------------------------------------------------------------------------------
# Response side.
# --------------------------------------------------------------------------------------------

#: Keys whose loss on the way back is a real loss to the client.
IMPORTANT_RESPONSE_KEYS = frozenset({
    "usage", "content", "text", "choices", "output", "output_text", "tool_calls", "arguments", "input",
    "finish_reason", "stop_reason", "message", "function", "prompt_tokens", "completion_tokens",
    "total_tokens", "input_tokens", "output_tokens", "refusal", "thinking",
})
#: Top-level fields of a Responses answer that echo the request's settings (``text`` is the
#: format config there, not the reply): losing the echo costs the client nothing it asked for.
RESPONSE_ECHO_ROOTS = frozenset({
    "text", "instructions", "tools", "tool_choice", "reasoning", "temperature", "top_p", "max_output_tokens",
    "parallel_tool_calls", "previous_response_id", "store", "truncation", "metadata", "user", "background",
    "max_tool_calls", "prompt_cache_key", "safety_identifier", "top_logprobs", "service_tier",
})
VOLATILE_RESPONSE_KEYS = frozenset({"id", "created", "created_at", "completed_at", "model", "system_fingerprint"})


def response_important(path: str) -> bool:
    if root(path) in RESPONSE_ECHO_ROOTS or root(path) == "error":
        return False
    keys = keys_of(path)
    if keys & MINOR_KEYS - {"name"} and not keys & {"usage"}:
        return False
    return bool(keys & IMPORTANT_RESPONSE_KEYS)


#: The usage counters a client bills and budgets by: losing one is an ``error``.
USAGE_COUNTERS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens"})


def _all_zero(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_all_zero(v) for v in value.values())
    return value == 0 or value is None


#: Keys of an item that identify or label it rather than carry its content.
_LABEL_KEYS = frozenset({"id", "type", "status", "role", "index", "object"})


def _carries_content(value: Any) -> bool:
    """Whether an item holds content a reader sees: a non-empty string or number not under an
    id-like or label key (``name: "web_search"`` counts, ``tool_use_id`` does not)."""
    if isinstance(value, dict):
        return any(_carries_content(v) for k, v in value.items()
                   if k not in _LABEL_KEYS and not str(k).endswith("_id"))
    if isinstance(value, list):
        return any(_carries_content(v) for v in value)
    return value not in (None, "", False) and not isinstance(value, bool)


def _item_type(value: Any) -> str:
    return str(value.get("type")) if isinstance(value, dict) and value.get("type") else "item"


def response_add(path: str, value: Any) -> tuple[Severity, str]:
    """Severity and message of a value the client received that the upstream never sent."""
    if path.endswith("]") and keys_of(path) & {"content", "output", "choices", "tool_calls"} and isinstance(value, dict):
        what = _item_type(value)
        if _carries_content(value):
            return "error", f"a {what} the upstream never sent was added to the reply"
        return "warn", f"an empty {what} the upstream never sent was added to the reply"
    return "info", "added by the gateway on the way back"


def response_drop(path: str, value: Any, *, cross: bool, target_has_concept: bool | None,
                  dst: str | None) -> tuple[Severity, str]:
    if value is None or value == [] or value == {}:
        return "info", "empty value not passed on"
    if "[" in path and last(path) in PLUMBING_KEYS and not isinstance(value, dict | list):
        return "info", "structural field not carried (its siblings were)"
    if path.endswith("]") and _item_type(value) in REASONING_ITEM_TYPES:
        return "warn", f"the upstream's {_item_type(value)} item was not passed on (reasoning the client does not see)"
    if cross and target_has_concept is False:
        return "info", f"the {dst} dialect has no place for this field"
    if root(path) == "usage":
        if _all_zero(value):
            return "info", "zero-valued usage counter omitted"
        if last(path) in USAGE_COUNTERS:
            return "error", "usage counter lost on the way back to the client"
        if last(path) == "service_tier":
            return "info", "service tier not passed on"
        return "warn", "usage detail (cached / reasoning / audio tokens) lost on the way back"
    if last(path) in VOLATILE_RESPONSE_KEYS and "[" not in path:
        return "info", f"{last(path)} not passed on"
    if cross and target_has_concept is False:
        return "info", f"the {dst} dialect has no place for this field"
    if response_important(path):
        return "error", "lost on the way back to the client"
    if cross and target_has_concept is None:
        return "info", f"the {dst} dialect has no place for this field"
    return "warn", "upstream field not passed to the client"
