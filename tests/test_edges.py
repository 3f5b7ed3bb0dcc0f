"""Scripted edge answers (corpus.d/edges.json): Anthropic's refusal stop reaches a chat client as
the content filter."""

from __future__ import annotations

from gatewaylens.dialects import finish_reasons_equivalent


def test_refusal_is_the_chat_content_filter() -> None:
    # LiteLLM 1.106.12 maps it so (litellm/litellm_core_utils/core_helpers.py:234).
    assert finish_reasons_equivalent("messages", "refusal", "chat", "content_filter")
    assert not finish_reasons_equivalent("messages", "refusal", "chat", "stop")
