"""Call-level behaviours (gatewaylens/analyze/calls.py) on exchanges with 0, 1 and 2 upstream calls."""

from __future__ import annotations

import copy

from gatewaylens.analyze.engine import analyze_exchange
from gatewaylens.analyze.synthetic import answer_body, client_body, make_exchange, translate_request
from gatewaylens.capture.models import ClientResponse, Exchange
from gatewaylens.mock.models import MockAnswer


def _exchange(first_status: int | None, calls: int) -> Exchange:
    body = client_body("chat", 1)
    ok = answer_body("chat", "hello gwl", (100, 7))
    ex = make_exchange(gateway="gw", case_id="c", dialect="chat", upstream="openai", body=body, upstream_dialect="chat",
                       upstream_body=translate_request("chat", "chat", body), answer=MockAnswer(status=200, body=ok),
                       client_response=ClientResponse(status=200, body=ok))
    if calls == 0:
        ex.upstream_requests = []
    elif calls == 2:
        first = copy.deepcopy(ex.upstream_requests[0])
        assert first_status is not None
        first.response = MockAnswer(status=first_status, body={"error": {"message": "x"}})
        ex.upstream_requests = [first, ex.upstream_requests[0]]
    return ex


def _calls(ex: Exchange) -> set[tuple[str, str]]:
    return {(f.kind, f.severity) for f in analyze_exchange(ex).findings if f.direction == "call"}


def test_one_call_has_no_call_finding() -> None:
    assert _calls(_exchange(None, 1)) == set()


def test_second_call_after_a_200_is_duplicated_call_error() -> None:
    assert _calls(_exchange(200, 2)) == {("duplicated_call", "error")}


def test_retry_after_429_is_retried_info() -> None:
    assert _calls(_exchange(429, 2)) == {("retried", "info")}


def test_retry_after_a_400_is_retried_warn() -> None:
    assert _calls(_exchange(400, 2)) == {("retried", "warn")}


def test_answer_without_upstream_call_is_named() -> None:
    assert _calls(_exchange(None, 0)) == {("answered_without_upstream", "warn")}
