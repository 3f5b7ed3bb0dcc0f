"""Scripted edge answers (corpus.d/edges.json): the analyzer's view of a stream that ends with an
error event, and of Anthropic's refusal stop."""

from __future__ import annotations

from gatewaylens.analyze.streams import compare_extracts, extract_frames
from gatewaylens.dialects import finish_reasons_equivalent

ERROR_STREAM = [("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 5}}}),
                ("content_block_delta", {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "ab"}}),
                ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "x"}})]


def _chat(*, error: bool) -> list[tuple[str | None, object]]:
    frames: list[tuple[str | None, object]] = [
        (None, {"choices": [{"index": 0, "delta": {"content": "ab"}, "finish_reason": None}]})]
    if error:
        frames.append((None, {"error": {"message": "overloaded"}}))
    else:
        frames += [(None, {"choices": [{"index": 0, "delta": {}, "finish_reason": "overloaded_error"}]}), (None, "[DONE]")]
    return frames


def _entries(client: list[tuple[str | None, object]], dialect: str = "chat") -> dict[str, tuple[str, str]]:
    up = extract_frames("messages", ERROR_STREAM)  # type: ignore[arg-type]
    cl = extract_frames(dialect, client)  # type: ignore[arg-type]
    entries, _ = compare_extracts(up, cl, client_stream=True, usage_requested=True, upstream_cut=False)
    return {e.src_path or e.dst_path or "": (e.kind, e.severity) for e in entries}


def test_an_upstream_error_event_hidden_behind_a_clean_end_is_an_error() -> None:
    hidden = _entries(_chat(error=False))
    assert hidden["error"] == ("dropped", "error")
    assert hidden["terminal"] == ("kept", "info")


def test_an_upstream_error_event_passed_on_is_no_missing_terminal() -> None:
    passed = _entries(_chat(error=True))
    assert "error" not in passed
    assert passed["terminal"] == ("dropped", "info")  # ended with the error, as the upstream did
    same = _entries(ERROR_STREAM, "messages")  # a passthrough of the same frames
    assert same["terminal"] == ("dropped", "info") and "error" not in same


def test_refusal_is_the_chat_content_filter() -> None:
    assert finish_reasons_equivalent("messages", "refusal", "chat", "content_filter")
    assert not finish_reasons_equivalent("messages", "refusal", "chat", "stop")
