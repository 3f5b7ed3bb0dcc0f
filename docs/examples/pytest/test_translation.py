"""Example translation tests for a gateway's repository (see conftest.py for ``my_gateway``).

Run once with ``pytest --gatewaylens-update`` to write the fixtures (tests/gatewaylens/fixtures/,
commit them), then plain ``pytest``: a new error/warn behaviour against a fixture fails the test
with its behaviour lines; an accepted one goes into a known-gaps file
(``--gatewaylens-known-gaps tests/gatewaylens/known-gaps.yaml``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import Gateway

import gatewaylens
from gatewaylens.pytest_plugin import Capturer, MockChannel

Assert = Callable[..., None]

# every gatewaylens_capture in this module: the gateway's name in exchanges and fixtures
pytestmark = pytest.mark.gatewaylens(gateway="mygw")


def test_required_tool_choice_is_honoured(gatewaylens_capture: Capturer, assert_translation: Assert,
                                          my_gateway: Gateway) -> None:
    # a case of the corpus shipped with gatewaylens (gatewaylens corpus export - | jq '.cases[].id')
    exchanges = gatewaylens_capture.sync(my_gateway.url, cases=["tools-chat-required"],
                                         corpus=gatewaylens.shipped_corpus())
    assert_translation(exchanges, no_errors=True)


def test_basic_chat_matches_its_fixtures(gatewaylens_capture: Capturer, assert_translation: Assert,
                                         my_gateway: Gateway) -> None:
    exchanges = gatewaylens_capture.sync(my_gateway.url, cases=["basic-chat", "basic-chat-stream"],
                                         corpus=gatewaylens.shipped_corpus())
    assert_translation(exchanges, fixture=True)


def test_what_reached_the_upstream(gatewaylens_mock: MockChannel, gatewaylens_capture: Capturer,
                                   my_gateway: Gateway) -> None:
    gatewaylens_capture.sync(my_gateway.url, cases=["sampling-chat-full"], corpus=gatewaylens.shipped_corpus())
    (record,) = gatewaylens_mock.records()  # the gateway called its upstream once, on this test's channel
    sent: Any = record.body_json
    assert sent["seed"] == 90210 and sent["stop"] == ["<<GWL-STOP>>", "##gwl-end-4e1##"]
