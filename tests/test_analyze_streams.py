"""Stream grammar, rebuilt content, exact usage and call checks on real traffic: the recording mock,
the test gateway (tests/capture_testgw.py) in one of its stream/usage modes, capture, analyze.

Each mode breaks exactly one thing, so each case must be named for exactly that and nothing else
at warn or error; re-chunking breaks nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

import gatewaylens
from gatewaylens.capture.models import GatewayProfile
from tests.support.capture import MODELS, Gateways, case

NAME = "streamgw"

#: case id -> (dialect, stream, test gateway mode, include_usage) and the only non-info findings
#: it may raise, as (direction, kind, path, severity).
CASES: dict[str, tuple[tuple[str, bool, str, bool], set[tuple[str, str, str, str]]]] = {
    "rechunk-chat": (("chat", True, "rechunk", True), set()),
    "rechunk-responses": (("responses", True, "rechunk", False), set()),
    "rechunk-messages": (("messages", True, "rechunk", False), set()),
    "drop-delta-chat": (("chat", True, "drop-delta", True), {("stream", "changed", "text", "error")}),
    "drop-delta-messages": (("messages", True, "drop-delta", False), {("stream", "changed", "text", "error")}),
    "reorder-stop-messages": (("messages", True, "reorder-stop", False),
                              {("stream", "malformed", "grammar.block_not_closed", "error")}),
    "usage-after-done-chat": (("chat", True, "usage-after-done", True),
                              {("stream", "malformed", "grammar.usage_after_done", "error")}),
    "lose-cached-chat": (("chat", True, "lose-cached", True),
                         {("stream", "dropped", "usage.prompt_tokens_details.cached_tokens", "warn")}),
    "lose-cached-messages": (("messages", False, "lose-cached", False),
                             {("response", "dropped", "usage.cache_read_input_tokens", "warn")}),
    "plus-one-responses": (("responses", True, "plus-one", False),
                           {("stream", "changed", "usage.output_tokens", "error")}),
    "plus-one-chat": (("chat", False, "plus-one", False), {("response", "changed", "usage.completion_tokens", "error")}),
    "double-chat": (("chat", False, "double", False), {("call", "duplicated_call", "(call)[1]", "error")}),
}


def _case(cid: str, dialect: str, stream: bool, mode: str, include_usage: bool) -> dict[str, Any]:
    # The test gateway forwards each dialect to the same path upstream (one profile, kind openai).
    c = case(cid, dialect=dialect, stream=stream, mode=mode)
    if include_usage:
        c["body"]["stream_options"] = {"include_usage": True}
    return c


@pytest.fixture(scope="module")
def findings() -> dict[str, set[tuple[str, str, str, str]]]:
    import asyncio

    async def run() -> dict[str, set[tuple[str, str, str, str]]]:
        async with gatewaylens.MockServer() as mock:
            gws = Gateways(mock.port)
            try:
                (spec,) = gws.start(NAME)
                (profile,) = gatewaylens.targets([spec])
                # The test gateway sends `<name>-<model>` upstream: declared, so it is no substitution.
                profile = GatewayProfile.model_validate({
                    **profile.model_dump(), "model_aliases": {m: f"{NAME}-{m}" for m in MODELS.values()}})
                corpus = gatewaylens.load_corpus({"cases": [_case(cid, *spec_) for cid, (spec_, _) in CASES.items()]})
                exchanges = await gatewaylens.capture([profile], mock_url=mock.url, corpus=corpus)
            finally:
                gws.stop()
        assert {e.case_id for e in exchanges} == set(CASES)
        assert all(e.upstream_requests and e.client_response for e in exchanges)
        result = gatewaylens.analyze(exchanges)
        out: dict[str, set[tuple[str, str, str, str]]] = {cid: set() for cid in CASES}
        for f in result.findings:
            if f.severity != "info":
                out[f.case_id].add((f.direction, f.kind, f.path, f.severity))
        return out

    return asyncio.run(run())


@pytest.mark.parametrize("cid", list(CASES))
def test_each_mode_is_named_for_exactly_what_it_broke(findings: dict[str, set[tuple[str, str, str, str]]],
                                                      cid: str) -> None:
    assert findings[cid] == CASES[cid][1]
