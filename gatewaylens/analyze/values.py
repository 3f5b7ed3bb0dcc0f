"""Small value helpers: distinctiveness, excerpts for tables, elision for prompts, masking for fixtures."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from gatewaylens.analyze.paths import last_key as last_key  # re-exported; defined once, in paths.py

#: Strings that appear everywhere in LLM API bodies: never tracked to another place by value.
STRUCTURAL_STRINGS = frozenset({
    "user", "assistant", "system", "developer", "tool", "function", "text", "object", "string",
    "number", "integer", "boolean", "array", "null", "auto", "none", "required", "any", "image",
    "image_url", "input_text", "output_text", "message", "json_object", "json_schema", "enabled",
    "disabled", "high", "low", "medium", "minimal", "base64", "url", "file", "input_image",
    "tool_use", "tool_result", "function_call", "function_call_output", "ephemeral", "completed",
    "stop", "length", "end_turn", "max_tokens", "tool_calls", "chat.completion", "response",
    "thinking", "redacted_thinking", "refusal", "content", "role", "type", "name", "true", "false",
})

#: Keys whose leaves are structure, not content: absorbed when the rest of their object moved.
STRUCTURAL_KEYS = frozenset({"role", "type", "object", "index"})


def is_distinctive(value: Any) -> bool:
    """A value that identifies itself wherever it turns up: long-ish strings, unusual numbers.

    Booleans, None, small integers, round floats and the API's own vocabulary are not: tracking
    them would attach a client value to any random place that happens to hold the same word.
    """
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) >= 16
    if isinstance(value, float):
        if value.is_integer():
            return abs(value) >= 16
        # 0.5, 0.7, 1.5: common defaults; 0.37, 0.83: chosen on purpose.
        return len(repr(value).split(".")[-1]) >= 2 or abs(value) >= 16
    if isinstance(value, str):
        return len(value) >= 4 and value.lower() not in STRUCTURAL_STRINGS
    return False


def value_key(value: Any) -> Any:
    """Hashable identity of a scalar that keeps bool, int and str apart (``True != 1`` here)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z", None)
    return ("j", json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")))


def strict_equal(a: Any, b: Any) -> bool:
    """JSON equality that, unlike ``==``, tells ``true`` from ``1`` (ints equal floats numerically)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def excerpt(value: Any, limit: int = 48) -> str:
    """Short one-line rendering of a value for a table cell; long values elided with their length."""
    if value is None:
        return "null"
    text = value if isinstance(value, str) else compact_json(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    if len(text) > limit:
        return f"{text[: limit - 1]}… (len {len(text)})"
    return text


def elide(value: Any, limit: int = 600, keep: int = 240) -> Any:
    """Copy of a JSON value with very long strings replaced by their start and an elision marker."""
    if isinstance(value, str):
        if len(value) > limit:
            return f"{value[:keep]}…[elided: {len(value)} chars total]"
        return value
    if isinstance(value, dict):
        return {k: elide(v, limit, keep) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > 60:
            return [elide(v, limit, keep) for v in value[:40]] + [f"…[elided: {len(value)} items total]"]
        return [elide(v, limit, keep) for v in value]
    return value


def pretty_json(value: Any) -> str:
    """Readable JSON that is cheap to make: one line per top-level key or item, each compact.
    (``json.dumps(indent=...)`` runs the pure-Python encoder, ten times slower.)"""
    if isinstance(value, dict) and value:
        items = [f"  {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n}"
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(f"  {json.dumps(v, ensure_ascii=False)}" for v in value) + "\n]"
    return json.dumps(value, ensure_ascii=False)


def md_cell(value: Any, limit: int = 60) -> str:
    """Text safe inside a GitHub Markdown table cell: no newlines, pipes escaped, long text elided."""
    text = value if isinstance(value, str) else excerpt(value, limit)
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    if len(text) > limit:
        text = f"{text[: limit - 1]}… (len {len(text)})"
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
    text = text.replace("`", "'")
    return text or " "


# --------------------------------------------------------------------------------------------
# Masking of volatile values (fixtures, baselines): ids, timestamps, per-run key fingerprints.
# --------------------------------------------------------------------------------------------

_VOLATILE_KEYS = frozenset({
    "id", "created", "created_at", "completed_at", "timestamp", "time", "expires_at", "request_id",
    "response_id", "item_id", "call_id", "tool_call_id", "tool_use_id", "sequence_number", "x-request-id",
    "request-id", "date", "openai-processing-ms", "duration_ms", "offset_ms",
})
_ID_RE = re.compile(
    r"^(chatcmpl|cmpl|resp|msg|toolu|call|fc|rs|req|run|gen|item|evt|ws|batch|file|asst|srvtoolu)[-_][A-Za-z0-9_\-]{6,}$"
)
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
_FP_RE = re.compile(r"fp=[0-9a-f]{8}")
_LONG = 240


def mask(value: Any, key: str | None = None) -> Any:
    """Copy of a value with everything that changes from run to run replaced by a stable marker."""
    if key is not None and key.lower() in _VOLATILE_KEYS and not isinstance(value, dict | list):
        return None if value is None else "<volatile>"
    if isinstance(value, dict):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, str):
        if _ID_RE.match(value) or _UUID_RE.match(value):
            return "<id>"
        if _ISO_RE.match(value):
            return "<timestamp>"
        if "fp=" in value:
            value = _FP_RE.sub("fp=<fp>", value)
        if len(value) > _LONG:
            digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
            return f"<str len={len(value)} sha256={digest}>"
    return value
