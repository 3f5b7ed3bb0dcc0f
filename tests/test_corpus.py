"""The shipped corpus (corpus.json): valid, complete, and built so an analyzer can follow every value.

These tests are fast (no network, no gateway).  They check three things:

* the file validates against the ``Corpus``/``Case`` models, and the models reject bad cases;
* the corpus covers every translation hard part the capture issue lists (per dialect and field);
* the distinctive-value rule: numbers and strings are unusual enough that finding one in an
  upstream request identifies where it came from (no 0.7 temperatures, no max_tokens 1024).
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
import re
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import ValidationError

from gatewaylens.capture.models import Case, Corpus
from gatewaylens.dialects import (
    DIALECT_PATHS,
    DIALECTS,
    UPSTREAMS,
    Dialect,
    frame_type,
    redact_headers,
    requested_tool,
)
from gatewaylens.mock.server import MockServer

ROOT = Path(__file__).resolve().parent.parent
CORPUS_PATH = ROOT / "corpus.json"
#: The corpus directory the default run reads beside corpus.json (reported-bug pack, conversations).
CORPUS_DIR = ROOT / "corpus.d"

#: Token-limit fields whose values must be distinctive and unique across the corpus.
TOKEN_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "budget_tokens")
#: Sampling floats that must not take a value a gateway might inject as its own default.
FLOAT_KEYS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
COMMON_SEEDS = {0, 1, 7, 42, 123, 1234, 12345, 2024, 2025}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

REQUIRED_TAGS = {
    "baseline", "sampling", "system", "tools", "roundtrip", "images", "structured-output", "reasoning",
    "cache", "metadata", "responses-state", "stream", "usage", "unknown-field", "nulls-empty", "unicode",
    "large", "errors", "known-bug", "headers", "multi-turn", "extension",
}


@cache
def _corpus() -> Corpus:
    return Corpus.model_validate_json(CORPUS_PATH.read_bytes())


@cache
def _full() -> Corpus:
    """corpus.json and every file of corpus.d/, merged the way capture's default run loads them."""
    from gatewaylens.capture.corpus import load_corpus

    return load_corpus([CORPUS_PATH, CORPUS_DIR]).corpus


@pytest.fixture
def corpus() -> Corpus:
    """The whole default corpus: the value rules hold for the pack as much as for corpus.json."""
    return _full()


@pytest.fixture
def base() -> Corpus:
    """corpus.json alone (coverage quotas that are about the shipped base file)."""
    return _corpus()


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (generic dotted path, value) for every node; list indexes become ``[]``."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from walk(item, f"{path}[]")


def values_at(case: Case, path: str) -> list[Any]:
    return [v for p, v in walk(case.body) if p == path]


def is_block(kind: str, **extra: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """Predicate: a dict content block of ``type`` kind whose listed fields satisfy their predicates."""

    def check(v: Any) -> bool:
        return isinstance(v, dict) and v.get("type") == kind and all(k in v and f(v[k]) for k, f in extra.items())

    return check


def equals(expected: Any) -> Callable[[Any], bool]:
    return lambda v: type(v) is type(expected) and v == expected


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_float(v: Any) -> bool:
    return isinstance(v, float)


def is_str(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def nonempty_dict(v: Any) -> bool:
    return isinstance(v, dict) and bool(v)


def anything(v: Any) -> bool:
    return True


# (label, dialect, generic path, predicate): each must match in at least one case of that dialect.
COVERAGE: list[tuple[str, str, str, Callable[[Any], bool]]] = [
    # sampling
    ("chat temperature", "chat", "temperature", is_float),
    ("chat top_p", "chat", "top_p", is_float),
    ("chat seed", "chat", "seed", is_int),
    ("chat stop as list", "chat", "stop", lambda v: isinstance(v, list) and len(v) >= 2),
    ("chat stop as string", "chat", "stop", is_str),
    ("chat max_tokens", "chat", "max_tokens", is_int),
    ("chat max_completion_tokens", "chat", "max_completion_tokens", is_int),
    ("chat n > 1", "chat", "n", lambda v: is_int(v) and v > 1),
    ("chat logprobs", "chat", "logprobs", equals(True)),
    ("chat top_logprobs", "chat", "top_logprobs", is_int),
    ("chat top_k extension", "chat", "top_k", is_int),
    ("messages top_k", "messages", "top_k", is_int),
    ("messages temperature", "messages", "temperature", is_float),
    ("messages top_p", "messages", "top_p", is_float),
    ("messages stop_sequences", "messages", "stop_sequences", lambda v: isinstance(v, list) and bool(v)),
    ("responses max_output_tokens", "responses", "max_output_tokens", is_int),
    ("responses temperature", "responses", "temperature", is_float),
    ("responses top_logprobs", "responses", "top_logprobs", is_int),
    # system prompt placement
    ("chat system role", "chat", "messages[].role", equals("system")),
    ("chat developer role", "chat", "messages[].role", equals("developer")),
    ("messages system string", "messages", "system", is_str),
    ("messages system blocks", "messages", "system[]", is_block("text")),
    ("responses instructions", "responses", "instructions", is_str),
    ("responses developer input item", "responses", "input[].role", equals("developer")),
    # tools
    ("chat tools", "chat", "tools[].function.parameters", nonempty_dict),
    ("chat tool_choice auto", "chat", "tool_choice", equals("auto")),
    ("chat tool_choice required", "chat", "tool_choice", equals("required")),
    ("chat tool_choice none", "chat", "tool_choice", equals("none")),
    ("chat tool_choice named", "chat", "tool_choice.function.name", is_str),
    ("chat parallel_tool_calls", "chat", "parallel_tool_calls", equals(False)),
    ("chat strict tool", "chat", "tools[].function.strict", equals(True)),
    ("responses flat tools", "responses", "tools[].parameters", nonempty_dict),
    ("responses tool_choice required", "responses", "tool_choice", equals("required")),
    ("responses tool_choice named (flat)", "responses", "tool_choice.name", is_str),
    ("responses parallel_tool_calls", "responses", "parallel_tool_calls", lambda v: isinstance(v, bool)),
    ("messages tools", "messages", "tools[].input_schema", nonempty_dict),
    ("messages tool_choice any", "messages", "tool_choice.type", equals("any")),
    ("messages tool_choice tool", "messages", "tool_choice.name", is_str),
    ("messages disable_parallel_tool_use", "messages", "tool_choice.disable_parallel_tool_use", equals(True)),
    # round trips
    ("chat assistant tool_calls", "chat", "messages[].tool_calls[].function.arguments", is_str),
    ("chat tool message", "chat", "messages[].tool_call_id", is_str),
    ("responses function_call item", "responses", "input[]", is_block("function_call", call_id=is_str)),
    ("responses function_call_output item", "responses", "input[]",
     is_block("function_call_output", call_id=is_str, output=is_str)),
    ("messages tool_use block", "messages", "messages[].content[]", is_block("tool_use", id=is_str)),
    ("messages tool_result block", "messages", "messages[].content[]", is_block("tool_result", tool_use_id=is_str)),
    ("messages tool_result is_error", "messages", "messages[].content[].is_error", equals(True)),
    # images
    ("chat image URL", "chat", "messages[].content[].image_url.url", lambda v: str(v).startswith("http")),
    ("chat image base64", "chat", "messages[].content[].image_url.url",
     lambda v: str(v).startswith("data:image/png;base64,")),
    ("responses image URL", "responses", "input[].content[]",
     is_block("input_image", image_url=lambda v: str(v).startswith("http"))),
    ("responses image base64", "responses", "input[].content[]",
     is_block("input_image", image_url=lambda v: str(v).startswith("data:image/png;base64,"))),
    ("messages image URL", "messages", "messages[].content[].source", is_block("url", url=is_str)),
    ("messages image base64", "messages", "messages[].content[].source",
     is_block("base64", media_type=equals("image/png"), data=is_str)),
    # structured output
    ("chat response_format json_schema", "chat", "response_format.json_schema.schema", nonempty_dict),
    ("chat response_format json_object", "chat", "response_format.type", equals("json_object")),
    ("responses text.format json_schema", "responses", "text.format.schema", nonempty_dict),
    ("messages output_config.format", "messages", "output_config.format.schema", nonempty_dict),
    # reasoning / thinking
    ("chat reasoning_effort", "chat", "reasoning_effort", is_str),
    ("chat reasoning_content in assistant turn", "chat", "messages[].reasoning_content", is_str),
    ("responses reasoning.effort", "responses", "reasoning.effort", is_str),
    ("responses reasoning.summary", "responses", "reasoning.summary", is_str),
    ("messages thinking budget", "messages", "thinking.budget_tokens", is_int),
    ("messages signed thinking block", "messages", "messages[].content[]", is_block("thinking", signature=is_str)),
    ("messages output_config.effort", "messages", "output_config.effort", is_str),
    # caching
    ("messages cache_control on system block", "messages", "system[].cache_control.type", equals("ephemeral")),
    ("messages cache_control on tool_use", "messages", "messages[].content[]",
     is_block("tool_use", cache_control=nonempty_dict)),
    ("messages cache_control on tool_result", "messages", "messages[].content[]",
     is_block("tool_result", cache_control=nonempty_dict)),
    ("messages cache_control on a tool", "messages", "tools[].cache_control.type", equals("ephemeral")),
    ("chat cache_control extension", "chat", "messages[].content[].cache_control.type", equals("ephemeral")),
    # user / metadata / Responses state
    ("messages metadata.user_id", "messages", "metadata.user_id", is_str),
    ("chat user", "chat", "user", is_str),
    ("chat metadata", "chat", "metadata", nonempty_dict),
    ("responses user", "responses", "user", is_str),
    ("responses metadata", "responses", "metadata", nonempty_dict),
    ("responses previous_response_id", "responses", "previous_response_id", is_str),
    ("responses store true", "responses", "store", equals(True)),
    ("responses store false", "responses", "store", equals(False)),
    ("responses client_metadata", "responses", "client_metadata", nonempty_dict),
    # streams
    ("chat include_usage", "chat", "stream_options.include_usage", equals(True)),
    # odd bodies
    ("chat unknown top-level field", "chat", "x_gwl_unknown_field", anything),
    ("messages unknown top-level field", "messages", "x_gwl_unknown_field", anything),
    ("chat explicit null", "chat", "temperature", lambda v: v is None),
    ("chat empty tools", "chat", "tools", equals([])),
    ("messages empty stop_sequences", "messages", "stop_sequences", equals([])),
    ("responses explicit null", "responses", "previous_response_id", lambda v: v is None),
    ("messages assistant prefill", "messages", "messages[].role", equals("assistant")),
]


def test_corpus_file_validates_as_corpus() -> None:
    corpus = Corpus.model_validate_json(CORPUS_PATH.read_bytes())
    assert corpus.version == 1
    assert corpus.description
    assert len(corpus.cases) >= 40


def duplicate_ids(cases: list[Case]) -> list[str]:
    """Ids used by more than one case, in first-use order (the check both tests below rely on)."""
    return [cid for cid, n in Counter(c.id for c in cases).items() if n > 1]


def test_ids_are_unique(corpus: Corpus) -> None:
    assert duplicate_ids(corpus.cases) == []


def test_every_dialect_and_stream_combination_is_present(corpus: Corpus) -> None:
    present = {(c.dialect, c.stream) for c in corpus.cases}
    missing = {(d, s) for d in DIALECTS for s in (False, True)} - present
    assert missing == set()
    # Not a token effort: several cases per combination.
    counts = Counter((c.dialect, c.stream) for c in corpus.cases)
    assert min(counts.values()) >= 5, counts


def test_stream_flag_agrees_with_body(corpus: Corpus) -> None:
    for case in corpus.cases:
        assert bool(case.body.get("stream", False)) is case.stream, case.id


def test_required_tags_present(corpus: Corpus) -> None:
    tags = {t for c in corpus.cases for t in c.tags}
    assert REQUIRED_TAGS - tags == set()
    for case in corpus.cases:
        assert case.tags, f"{case.id} has no tags"
        assert all(re.fullmatch(r"[a-z][a-z-]*", t) for t in case.tags), case.id


@pytest.mark.parametrize(("label", "dialect", "path", "pred"), COVERAGE, ids=[c[0] for c in COVERAGE])
def test_corpus_covers(corpus: Corpus, label: str, dialect: str, path: str, pred: Callable[[Any], bool]) -> None:
    hits = [c.id for c in corpus.cases if c.dialect == dialect and any(pred(v) for v in values_at(c, path))]
    assert hits, f"no {dialect} case covers {label} ({path})"


def test_chat_stream_without_stream_options_exists(corpus: Corpus) -> None:
    assert any(c.dialect == "chat" and c.stream and "stream_options" not in c.body for c in corpus.cases)


def test_models_are_plausible(corpus: Corpus) -> None:
    for case in corpus.cases:
        model = case.body.get("model")
        assert isinstance(model, str), case.id
        prefix = ("claude-",) if case.dialect == "messages" else ("gpt-", "o")
        assert model.startswith(prefix), (case.id, model)


# ----------------------------------------------------------------------------------------------
# Distinctive values
# ----------------------------------------------------------------------------------------------


def test_every_case_has_its_own_prompt_marker(corpus: Corpus) -> None:
    """Each body carries ``[gwl:<id>]`` exactly once and no other case's marker."""
    markers = {c.id: f"[gwl:{c.id}]" for c in corpus.cases}
    for case in corpus.cases:
        text = json.dumps(case.body, ensure_ascii=False)
        assert text.count(markers[case.id]) == 1, case.id
        others = [m for cid, m in markers.items() if cid != case.id and m in text]
        assert others == [], case.id


def test_token_limits_are_distinctive_and_unique(corpus: Corpus) -> None:
    seen: dict[int, str] = {}
    for case in corpus.cases:
        for path, value in walk(case.body):
            if path.rsplit(".", 1)[-1] not in TOKEN_KEYS or value is None:
                continue
            assert is_int(value), (case.id, path, value)
            assert value % 10 != 0, f"{case.id}: {path}={value} is a round number"
            assert value & (value - 1) != 0, f"{case.id}: {path}={value} is a power of two"
            assert value not in seen, f"{case.id}: {path}={value} already used by {seen[value]}"
            seen[value] = case.id
    assert len(seen) >= 60


def test_sampling_values_are_distinctive(corpus: Corpus) -> None:
    checked = 0
    for case in corpus.cases:
        for path, value in walk(case.body):
            key = path.rsplit(".", 1)[-1]
            if value is None or "." in path:
                continue
            if key in FLOAT_KEYS:
                assert is_float(value) and 0 < value < 1, (case.id, key, value)
                # two decimals, last one non-zero: 0.37 yes, 0.7 / 0.50 / 1.0 no
                assert round(value * 100) % 10 != 0 and abs(value * 100 - round(value * 100)) < 1e-9, (case.id, key, value)
                checked += 1
            elif key == "seed":
                assert is_int(value) and value not in COMMON_SEEDS, (case.id, value)
                checked += 1
            elif key == "top_k":
                assert is_int(value) and value % 10 != 0, (case.id, value)
                checked += 1
    assert checked >= 15


def test_stop_strings_are_distinctive(corpus: Corpus) -> None:
    found = 0
    for case in corpus.cases:
        for key in ("stop", "stop_sequences"):
            raw = case.body.get(key)
            stops = [raw] if isinstance(raw, str) else (raw or [])
            for s in stops:
                assert "GWL" in s.upper(), (case.id, s)
                found += 1
    assert found >= 6


def test_user_and_metadata_values_are_tagged(corpus: Corpus) -> None:
    found = 0
    for case in corpus.cases:
        for path, value in walk(case.body):
            if path in {"user", "safety_identifier", "prompt_cache_key", "previous_response_id"} or (
                path.startswith(("metadata.", "client_metadata.")) and path.count(".") == 1
            ):
                if value is None:
                    continue
                assert isinstance(value, str) and "gwl" in value, (case.id, path, value)
                found += 1
    assert found >= 10


def test_tool_names_end_in_gwl(corpus: Corpus) -> None:
    names = []
    for case in corpus.cases:
        for path, value in walk(case.body):
            if path in {"tools[].function.name", "tools[].name", "tool_choice.name", "tool_choice.function.name"}:
                names.append(value)
        for step in case.script or []:
            if step.tool_call and step.tool_call.name:
                names.append(step.tool_call.name)
    assert names
    assert all(isinstance(n, str) and n.endswith("_gwl") for n in names), names


# ----------------------------------------------------------------------------------------------
# Errors, scripts, upstreams
# ----------------------------------------------------------------------------------------------


def test_scripted_failures_cover_each_dialect_and_both_upstreams(base: Corpus) -> None:
    corpus = base
    kinds: dict[str, set[str]] = {d: set() for d in DIALECTS}
    for case in corpus.cases:
        for step in case.script or []:
            if step.status is not None:
                kinds[case.dialect].add(str(step.status))
                assert step.error_message and "gwl" in step.error_message, case.id
            if step.cut_after is not None:
                kinds[case.dialect].add("cut")
                assert case.stream, f"{case.id}: a cut only makes sense on a stream"
            if step.tool_call is not None:
                kinds[case.dialect].add("tool_call")
            # errors and cuts must be seen through both provider shapes
            assert case.upstreams() == list(UPSTREAMS), case.id
            # Only error steps repeat (to outlast a gateway's retries), and only a few times: capture
            # replaces the channel's script before each case, so leftovers cannot leak, but a long
            # run of errors would just slow every retrying gateway down.
            assert step.times == 1 or (step.status is not None and step.times <= 5), case.id
    for dialect, got in kinds.items():
        assert {"429", "500", "cut", "tool_call"} <= got, (dialect, got)
    persistent = [c.id for c in corpus.cases for s in c.script or [] if s.status and s.times > 1]
    assert len(persistent) >= 2, "no error that outlasts a gateway's retries"


def test_error_cases_are_tagged(corpus: Corpus) -> None:
    for case in corpus.cases:
        if any(s.status or s.cut_after is not None for s in case.script or []):
            assert "errors" in case.tags, case.id


def test_upstream_restrictions_are_rare_and_explained(corpus: Corpus, base: Corpus) -> None:
    restricted = [c for c in base.cases if c.upstream is not None and set(c.upstream) != set(UPSTREAMS)]
    assert len(restricted) <= len(base.cases) // 10
    # a reported bug often needs one provider shape; every restricted case says which and why
    for case in [c for c in corpus.cases if c.upstream is not None and set(c.upstream) != set(UPSTREAMS)]:
        assert "upstream" in case.note.lower(), case.id


def test_case_headers_survive_redaction(corpus: Corpus) -> None:
    """Case headers are data to follow, so none may look like a credential to the mock's redaction."""
    for case in corpus.cases:
        assert redact_headers(case.headers) == {k.lower(): v for k, v in case.headers.items()}, case.id
        if case.dialect == "messages":
            assert case.headers.get("anthropic-version") == "2023-06-01", case.id


# ----------------------------------------------------------------------------------------------
# Payload details: images, unicode, size
# ----------------------------------------------------------------------------------------------


def _png_ok(data: bytes) -> bool:
    """Signature, and every chunk's CRC; IHDR says 1x1."""
    if not data.startswith(PNG_SIGNATURE):
        return False
    pos, kinds = len(PNG_SIGNATURE), []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(kind + payload) & 0xFFFFFFFF != crc:
            return False
        if kind == b"IHDR" and struct.unpack(">II", payload[:8]) != (1, 1):
            return False
        kinds.append(kind)
        pos += 12 + length
    return kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds


def test_base64_images_are_valid_pngs(corpus: Corpus) -> None:
    blobs = []
    for case in corpus.cases:
        for path, value in walk(case.body):
            if isinstance(value, str) and value.startswith("data:image/png;base64,"):
                blobs.append(value.split(",", 1)[1])
            elif path.endswith("source.data"):
                blobs.append(value)
    assert len(blobs) >= 3
    for blob in blobs:
        assert _png_ok(base64.b64decode(blob, validate=True))


def test_urls_in_bodies_stay_on_loopback(corpus: Corpus) -> None:
    """A gateway that downloads an image URL must not send traffic off the machine."""
    urls = [
        v for c in corpus.cases for _, v in walk(c.body) if isinstance(v, str) and re.match(r"https?://", v)
    ]
    assert urls
    for url in urls:
        assert _is_loopback(urlsplit(url).hostname or ""), url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a DNS name: resolving it would already leave the machine
        return False


def test_non_ascii_variety(corpus: Corpus) -> None:
    text = "".join(json.dumps(c.body, ensure_ascii=False) for c in corpus.cases if "unicode" in c.tags)
    assert any(ord(ch) > 0xFFFF for ch in text), "no astral-plane character (emoji, math letters)"
    assert re.search(r"[\u0600-\u06ff]", text), "no Arabic (RTL)"
    assert re.search(r"[\u3040-\u30ff]", text), "no Japanese kana"
    assert re.search(r"[\u0900-\u097f]", text), "no Devanagari"
    assert "\u200d" in text, "no zero-width joiner sequence"
    assert "\u2028" in text, "no U+2028 (breaks naive JavaScript JSON handling)"
    assert "e\u0301" in text, "no combining accent (detects NFC normalisation)"
    assert len([c for c in corpus.cases if "unicode" in c.tags]) >= 3


def test_large_case_is_large_and_the_file_stays_reviewable(corpus: Corpus) -> None:
    large = [c for c in corpus.cases if "large" in c.tags]
    assert large
    for case in large:
        size = len(json.dumps(case.body, ensure_ascii=False).encode())
        assert 50_000 <= size <= 100_000, (case.id, size)
        assert "GWL-LARGE-END-9e4b" in json.dumps(case.body)
    assert CORPUS_PATH.stat().st_size < 300_000


def test_notes_say_what_a_faithful_gateway_does(corpus: Corpus) -> None:
    notes = Counter(c.note for c in corpus.cases)
    assert max(notes.values()) == 1, "two cases share a note"
    for case in corpus.cases:
        assert len(case.note) >= 80, case.id


# ----------------------------------------------------------------------------------------------
# Bodies have the official request shapes (checked with the SDKs' own request types)
# ----------------------------------------------------------------------------------------------


def _drain(value: Any) -> Any:
    """Consume pydantic's lazy validators for ``Iterable[...]`` fields so nested items get validated."""
    if isinstance(value, dict):
        return {k: _drain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_drain(v) for v in value]
    if type(value).__name__ == "ValidatorIterator":
        return [_drain(v) for v in value]
    return value


def test_bodies_match_the_official_sdk_request_types(corpus: Corpus) -> None:
    from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
    from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
    from openai.types.responses.response_create_params import ResponseCreateParamsNonStreaming
    from pydantic import TypeAdapter

    adapters: dict[str, TypeAdapter[Any]] = {
        "chat": TypeAdapter(CompletionCreateParamsNonStreaming),
        "responses": TypeAdapter(ResponseCreateParamsNonStreaming),
        "messages": TypeAdapter(MessageCreateParamsNonStreaming),
    }
    # The check must be able to fail: a flat (Responses-style) tool in a Chat body is wrong.
    with pytest.raises(ValidationError):
        _drain(adapters["chat"].validate_python(
            {"model": "m", "messages": [{"role": "user", "content": "x"}],
             "tools": [{"type": "function", "name": "flat_gwl", "parameters": {}}]}))
    for case in corpus.cases:
        body = {k: v for k, v in case.body.items() if k != "stream"}
        try:
            _drain(adapters[case.dialect].validate_python(body))
        except ValidationError as exc:  # pragma: no cover - only on a broken corpus
            pytest.fail(f"{case.id}: body does not match the {case.dialect} request type: {exc}")


# ----------------------------------------------------------------------------------------------
# The models reject bad cases
# ----------------------------------------------------------------------------------------------

_GOOD: dict[str, Any] = {
    "id": "probe-case",
    "dialect": "chat",
    "stream": False,
    "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "[gwl:probe-case] hi"}]},
    "note": "a probe",
}


def _with(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(_GOOD)
    data.update(changes)
    return data


def test_probe_case_is_valid() -> None:
    case = Case.model_validate(_GOOD)
    assert case.upstreams() == ["openai", "anthropic"]


def test_stream_true_without_body_stream_is_rejected() -> None:
    with pytest.raises(ValidationError, match="stream"):
        Case.model_validate(_with(stream=True))


def test_body_stream_true_with_stream_false_is_rejected() -> None:
    body = dict(_GOOD["body"], stream=True)
    with pytest.raises(ValidationError, match="stream"):
        Case.model_validate(_with(body=body))


def test_unknown_dialect_is_rejected() -> None:
    with pytest.raises(ValidationError, match="dialect"):
        Case.model_validate(_with(dialect="gemini"))


def test_unknown_upstream_is_rejected_and_single_upstream_is_accepted() -> None:
    with pytest.raises(ValidationError, match="upstream"):
        Case.model_validate(_with(upstream=["bedrock"]))
    assert Case.model_validate(_with(upstream="anthropic")).upstreams() == ["anthropic"]


@pytest.mark.parametrize("bad_id", ["Has-Upper", "", "-leading-dash", "with space", "x" * 101])
def test_bad_ids_are_rejected(bad_id: str) -> None:
    with pytest.raises(ValidationError, match="id"):
        Case.model_validate(_with(id=bad_id))


def test_missing_or_empty_note_and_unknown_case_field_are_rejected() -> None:
    no_note = {k: v for k, v in _GOOD.items() if k != "note"}
    with pytest.raises(ValidationError, match="note"):
        Case.model_validate(no_note)
    with pytest.raises(ValidationError, match="note"):
        Case.model_validate(_with(note=""))
    with pytest.raises(ValidationError, match="extra"):
        Case.model_validate(_with(stram=True))


def test_bad_script_steps_are_rejected() -> None:
    with pytest.raises(ValidationError, match="status"):
        Case.model_validate(_with(script=[{"status": 42}]))
    with pytest.raises(ValidationError, match="extra"):
        Case.model_validate(_with(script=[{"cut_afterr": 3}]))


def test_capture_loader_accepts_the_corpus_and_refuses_a_duplicate_id(tmp_path: Path) -> None:
    from gatewaylens.capture.corpus import InputError, load_corpus

    assert len(load_corpus(CORPUS_PATH).corpus.cases) == len(_corpus().cases)
    data = json.loads(CORPUS_PATH.read_text(encoding="utf-8"))
    data["cases"].append(data["cases"][5])
    doubled = tmp_path / "doubled.json"
    doubled.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(data["cases"][5]["id"])):
        load_corpus(doubled)


def test_duplicate_check_finds_duplicates(corpus: Corpus) -> None:
    """The uniqueness check ``test_ids_are_unique`` calls is not vacuous: doubled cases are found,
    each once, and distinct ids are not."""
    doubled = [*corpus.cases, corpus.cases[3], corpus.cases[7], corpus.cases[3]]
    assert duplicate_ids(doubled) == [corpus.cases[3].id, corpus.cases[7].id]
    assert duplicate_ids(corpus.cases[:5]) == []


# ----------------------------------------------------------------------------------------------
# Against the real mock (an identity "gateway"): every case and script does what its note says
# ----------------------------------------------------------------------------------------------


#: What a tool call looks like in an answer of each dialect (non-stream body or stream frame data).
TOOL_CALL_MARK: dict[str, str] = {
    "chat": r'"tool_calls"\s*:\s*\[\s*\{',
    "responses": r'"type"\s*:\s*"function_call"',
    "messages": r'"type"\s*:\s*"tool_use"',
}


async def _send(client: httpx.AsyncClient, channel: str, case: Case) -> int | None:
    """Queue the case's script, replacing any leftover as capture does, and send its body.

    Returns the HTTP status, or None when the stream broke.
    """
    steps = [s.model_dump(mode="json", exclude_defaults=True) for s in case.script or []]
    r = await client.post(f"/__mock/script?channel={channel}", json={"steps": steps, "mode": "replace"})
    assert r.status_code == 200, (case.id, r.text)
    try:
        r = await client.post(f"/ch/{channel}{DIALECT_PATHS[case.dialect]}", json=case.body, headers=case.headers)
    except httpx.RemoteProtocolError:
        return None
    return r.status_code


async def test_every_case_gets_its_scripted_outcome_from_the_mock(mock_server: MockServer) -> None:
    async with httpx.AsyncClient(base_url=mock_server.url, timeout=30, headers=mock_server.control_headers) as client:
        for case in _corpus().cases:
            status = await _send(client, "corpus", case)
            rec = (await client.get("/__mock/last?channel=corpus")).json()
            answer = rec["response"]
            assert rec["body_json"] == case.body, case.id
            step = case.script[0] if case.script else None
            if step and step.status:
                assert status == step.status == answer["status"], case.id
            elif step and step.cut_after is not None:
                assert status is None and answer["cut"] is True, case.id
                assert len(answer["frames"]) == step.cut_after, case.id
            else:
                assert status == 200 and answer["stream"] is case.stream, case.id
            wanted = (step.tool_call.name if step and step.tool_call else None) or requested_tool(
                case.dialect, case.body
            )
            if wanted:
                shown = json.dumps(answer["body"]) if answer["body"] else "".join(f["data"] for f in answer["frames"])
                assert wanted in shown and re.search(TOOL_CALL_MARK[case.dialect], shown), case.id


def _text_delta_indexes(dialect: Dialect, frames: list[dict[str, Any]]) -> list[int]:
    out = []
    for i, frame in enumerate(frames):
        data = frame["data"]
        kind = frame_type(dialect, frame.get("event"), json.loads(data) if data.startswith("{") else data)
        if dialect == "chat":
            if kind == "chunk" and any(c.get("delta", {}).get("content") for c in json.loads(data)["choices"]):
                out.append(i)
        elif kind in {"response.output_text.delta", "content_block_delta"}:
            out.append(i)
    return out


async def test_stream_cuts_fall_mid_text_for_every_upstream_dialect(mock_server: MockServer) -> None:
    """cut_after must leave some text delivered and some missing, whichever dialect the gateway calls."""
    probes: dict[Dialect, dict[str, Any]] = {
        "chat": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "stream": True},
        "responses": {"model": "gpt-4o-mini", "input": "x", "stream": True},
        "messages": {"model": "claude-3-5-haiku-latest", "max_tokens": 17, "stream": True,
                     "messages": [{"role": "user", "content": "x"}]},
    }
    cuts = [(c.id, s) for c in _corpus().cases for s in c.script or [] if s.cut_after is not None]
    assert len(cuts) >= 3
    async with httpx.AsyncClient(base_url=mock_server.url, timeout=30, headers=mock_server.control_headers) as client:
        for case_id, step in cuts:
            for dialect, body in probes.items():
                uncut = step.model_dump(exclude_defaults=True, exclude={"cut_after"})
                await client.post("/__mock/script?channel=cutprobe", json={"steps": [uncut], "mode": "replace"})
                r = await client.post(f"/ch/cutprobe{DIALECT_PATHS[dialect]}", json=body)
                assert r.status_code == 200
                frames = (await client.get("/__mock/last?channel=cutprobe")).json()["response"]["frames"]
                deltas = _text_delta_indexes(dialect, frames)
                assert deltas, (case_id, dialect)
                assert step.cut_after is not None
                assert deltas[0] < step.cut_after <= deltas[-1], (case_id, dialect, step.cut_after, deltas)


# ----------------------------------------------------------------------------------------------
# The reported-bug pack (corpus.d/): every case reproduces one public report
# ----------------------------------------------------------------------------------------------

#: tag -> the GitHub repository whose tracker the gateway's reports live in
BUG_TRACKERS = {
    "litellm": "BerriAI/litellm", "portkey": "Portkey-AI/gateway", "bifrost": "maximhq/bifrost",
    "claude-code-router": "musistudio/claude-code-router", "envoy-ai-gateway": "envoyproxy/ai-gateway",
    "kong": "Kong/kong",
}


def _pack(corpus: Corpus) -> list[Case]:
    return [c for c in corpus.cases if "reported-bug" in c.tags]


def test_pack_is_big_enough_and_spans_the_gateways(corpus: Corpus) -> None:
    pack = _pack(corpus)
    assert len(pack) >= 30
    gateways = Counter(t for c in pack for t in c.tags if t in BUG_TRACKERS)
    assert {"litellm", "portkey", "bifrost", "claude-code-router"} <= set(gateways), gateways
    assert {c.dialect for c in pack} == set(DIALECTS)
    assert {True, False} == {c.stream for c in pack}
    assert set(UPSTREAMS) <= {u for c in pack for u in c.upstreams()}


def test_pack_cases_name_their_report(corpus: Corpus) -> None:
    """id bug-<gateway>-<number>, source the report's URL in that gateway's tracker, one-line summary."""
    for case in _pack(corpus):
        gateway = next(t for t in case.tags if t in BUG_TRACKERS)
        m = re.fullmatch(rf"bug-{re.escape(gateway)}-(\d+)", case.id)
        assert m, case.id
        assert case.source == f"https://github.com/{BUG_TRACKERS[gateway]}/issues/{m.group(1)}" or \
            case.source == f"https://github.com/{BUG_TRACKERS[gateway]}/pull/{m.group(1)}", (case.id, case.source)
        assert case.summary and "\n" not in case.summary and 10 <= len(case.summary) <= 120, case.id
        assert case.note.startswith("Reported"), case.id


def test_pack_cases_state_the_correct_behaviour(corpus: Corpus) -> None:
    """Each case says what a faithful gateway does, machine-readably, and points at something the
    request can have (a request path the body holds, or a header the case sends)."""
    stream_paths = {"text", "tool_arguments", "reasoning", "usage", "finish_reason", "terminal", "role"}
    for case in _pack(corpus):
        assert case.expect, case.id
        for e in case.expect:
            if e.direction == "headers":
                assert e.path and e.path.lower() in {k.lower() for k in case.headers}, (case.id, e.path)
            elif e.direction == "stream":
                assert case.stream and e.path in stream_paths, (case.id, e.path)
            elif e.direction == "request" and e.path and e.must != "must_not_add":
                assert resolve(case.body, e.path), (case.id, e.path)
            elif e.direction == "request" and e.path:
                assert not resolve(case.body, e.path), f"{case.id}: must_not_add {e.path}, but the client sends it"


def resolve(value: Any, path: str) -> list[Any]:
    """Values at an expectation path (``a.b[0].c``, ``[*]`` any index) in a JSON value."""
    current = [value]
    for key, index in re.findall(r"([^.\[\]]+)|\[(\d+|\*)\]", path):
        nxt: list[Any] = []
        for v in current:
            if key and isinstance(v, dict) and key in v:
                nxt.append(v[key])
            elif index == "*" and isinstance(v, list):
                nxt.extend(v)
            elif index and index != "*" and isinstance(v, list) and int(index) < len(v):
                nxt.append(v[int(index)])
        current = nxt
    return current


def test_resolve_follows_expectation_paths() -> None:
    body = {"a": [{"b": 1}, {"b": 2, "$defs": {"x": 3}}]}
    assert resolve(body, "a[1].b") == [2]
    assert resolve(body, "a[*].b") == [1, 2]
    assert resolve(body, "a[1].$defs.x") == [3]
    assert resolve(body, "a[2].b") == [] and resolve(body, "c") == []


def test_pack_scripts_answer_in_the_upstream_shape_they_name(corpus: Corpus) -> None:
    """A custom event list or body is one provider's wire shape, so its case runs on that upstream
    only; events of a stream case parse and end the way that provider ends a stream."""
    for case in _pack(corpus):
        for step in case.script or []:
            if step.events is None and step.body is None:
                continue
            assert case.upstream is not None and len(case.upstream) == 1, case.id
            kind = case.upstream[0]
            if step.events is not None:
                assert case.stream, case.id
                last = step.events[-1]
                assert (last.data == "[DONE]") if kind == "openai" else (last.event == "message_stop"), case.id
            if step.body is not None and kind == "anthropic":
                assert step.body.get("type") == "message", case.id
