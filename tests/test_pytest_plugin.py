"""The pytest plugin, used from outside the way a gateway's own test suite uses it (pytester, as
syrupy tests itself): the inner suites below start the test gateway (tests/capture_testgw.py) on
their test's mock channel and assert its translation, and the outer tests check how they ended."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTGW = Path(__file__).resolve().parent / "capture_testgw.py"

#: The inner suite's conftest: ``my_gateway`` is the test gateway, started per test with its
#: upstream on the test's own mock channel; ``GWMODE`` picks its behaviour (see capture_testgw.py).
CONFTEST = f"""
import os, socket, subprocess, sys, time
import httpx, pytest

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

class Gateway:
    def __init__(self, upstream):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{{self.port}}"
        self.proc = subprocess.Popen([{sys.executable!r}, {str(TESTGW)!r}, "--name", "mygw", "--port", str(self.port),
                                      "--upstream", upstream], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1, trust_env=False).status_code == 200:
                    return
            except Exception:
                time.sleep(0.05)
        self.proc.kill()  # never leave it running
        self.proc.wait()
        raise RuntimeError("test gateway did not start")

@pytest.fixture
def my_gateway(gatewaylens_mock):
    gw = Gateway(gatewaylens_mock.channel_url)
    yield gw
    gw.proc.kill()
    gw.proc.wait()

@pytest.fixture
def mode_headers():
    return {{"x-testgw-mode": os.environ.get("GWMODE", "normal")}}
"""

CORPUS = {"cases": [
    {"id": "p-chat", "dialect": "chat", "stream": False, "note": "plain chat", "upstream": "openai",
     "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}},
    {"id": "p-chat-stream", "dialect": "chat", "stream": True, "note": "plain chat, streamed", "upstream": "openai",
     "body": {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}},
    {"id": "p-messages", "dialect": "messages", "stream": False, "note": "plain messages", "upstream": "openai",
     "body": {"model": "claude-3-5-haiku-latest", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}},
]}


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    (pytester.path / "corpus.json").write_text(json.dumps(CORPUS))
    # in-process runs: gatewaylens is imported already, so pytest cannot assertion-rewrite the plugin
    pytester.makeini("[pytest]\ngatewaylens_gateway = mygw\ngatewaylens_corpus = corpus.json\n"
                     "asyncio_default_fixture_loop_scope = function\n"
                     "filterwarnings = ignore::pytest.PytestAssertRewriteWarning\n")
    return pytester


def test_a_faithful_gateway_passes_sync_and_async(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_gw="""
        import gatewaylens

        def test_shipped_case(gatewaylens_mock, gatewaylens_capture, assert_translation, my_gateway):
            exchanges = gatewaylens_capture.sync(my_gateway.url, cases=["tools-chat-required"],
                                                 corpus=gatewaylens.shipped_corpus())
            assert [e.case_id for e in exchanges] == ["tools-chat-required"]
            assert exchanges[0].gateway == "mygw" and exchanges[0].id.startswith("mygw/tools-chat-required/")
            assert_translation(exchanges, no_errors=True)
            records = gatewaylens_mock.records()
            assert len(records) == 1 and records[0].channel == gatewaylens_mock.channel
            assert records[0].body_json["tool_choice"] == "required"

        async def test_async(gatewaylens_capture, assert_translation, my_gateway):
            exchanges = await gatewaylens_capture(my_gateway.url, cases=["p-*"])  # the suite's corpus (ini)
            assert sorted(e.case_id for e in exchanges) == ["p-chat", "p-chat-stream", "p-messages"]
            assert_translation(exchanges, no_errors=True)

        def test_channels_are_per_test(gatewaylens_mock, request):
            assert request.node.name in gatewaylens_mock.channel and gatewaylens_mock.records() == []
    """)
    res = suite.runpytest_subprocess("-o", "asyncio_mode=auto")
    res.assert_outcomes(passed=3)
    assert "gatewaylens 0.1.0: fixtures " in res.stdout.str()


@pytest.mark.parametrize("mode", ["garbage", "garbage-after"])
def test_a_gateway_answering_garbage_fails(suite: pytest.Pytester, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    suite.makepyfile(test_gw="""
        def test_garbage(gatewaylens_capture, assert_translation, my_gateway, mode_headers):
            exchanges = gatewaylens_capture.sync(my_gateway.url, cases=["p-chat", "p-chat-stream"], headers=mode_headers)
            assert len(exchanges) == 2
            assert_translation(exchanges)  # no flags: a garbage answer is never a translation
    """)
    monkeypatch.setenv("GWMODE", mode)
    res = suite.runpytest_subprocess()
    res.assert_outcomes(failed=1)
    out = res.stdout.str()
    assert "AssertionError: gatewaylens: " in out and "problem(s) in 2 exchange(s)" in out
    assert "mygw/p-chat[openai]: answered HTTP 200 with a body that is not JSON" in out
    assert "mygw/p-chat-stream[openai]: asked to stream, answered HTTP 200 without any SSE frame" in out
    assert ("without calling the upstream" in out) == (mode == "garbage")
    # the same test against the faithful gateway passes: the failure was the garbage
    monkeypatch.setenv("GWMODE", "normal")
    suite.runpytest_subprocess().assert_outcomes(passed=1)


def test_malformed_answers_fail_without_a_gateway() -> None:
    """assert_translation on hand-made exchanges: JSON of the wrong shape, non-JSON SSE data, a rejection."""
    import gatewaylens
    from gatewaylens.capture.models import ClientFrame, ClientRequest, ClientResponse, Exchange
    from gatewaylens.mock.models import MockAnswer, RecordedExchange

    def ex(cid: str, stream: bool, response: ClientResponse, upstream_status: int | None = 200) -> Exchange:
        recs = [RecordedExchange(seq=1, channel="g", time="2026-01-01T00:00:00Z", method="POST",
                                 path="/v1/chat/completions", raw_path="/ch/g/v1/chat/completions",
                                 body_json={"model": "m"}, body_is_json=True, response=MockAnswer(status=upstream_status))
                for _ in range(upstream_status is not None)]
        return Exchange(id=f"g/{cid}/openai", case_id=cid, gateway="g", dialect="chat", stream=stream, upstream="openai",
                        client_request=ClientRequest(url="http://x/v1/chat/completions", body={"model": "m"}),
                        upstream_requests=recs, client_response=response)

    cases = {
        "wrong-shape": (ex("wrong-shape", False, ClientResponse(status=200, body={"ok": True})),
                        "JSON that is not a chat answer (no 'choices' list)"),
        "bad-frame": (ex("bad-frame", True, ClientResponse(status=200, stream=True, frames=[
            ClientFrame(data='{"choices": []}', json_data={"choices": []}), ClientFrame(data="<html>")])),
            'SSE frame #1 data is not JSON: "<html>"'),
        "rejected": (ex("rejected", False, ClientResponse(status=400, body={"error": {"message": "no"}}), None),
                     'rejected: HTTP 400 without calling the upstream: {"error":{"message":"no"}}'),
        "turned-into-error": (ex("turned", False, ClientResponse(status=500, body={"error": {"message": "x"}})),
                              "rejected: HTTP 500 after the upstream answered 200"),
    }
    for exchange, needle in cases.values():
        with pytest.raises(AssertionError) as info:
            gatewaylens.assert_translation([exchange])
        assert needle in str(info.value), str(info.value)
    gatewaylens.assert_translation([cases["rejected"][0]], allow_rejected=True)
    with pytest.raises(AssertionError, match="after the upstream answered 200"):  # never acceptable
        gatewaylens.assert_translation([cases["turned-into-error"][0]], allow_rejected=True)
    relayed = ex("relayed", False, ClientResponse(status=429, body={"error": {"message": "slow down"}}), upstream_status=429)
    gatewaylens.assert_translation([relayed])  # the upstream's own error, relayed: not a rejection
    with pytest.raises(AssertionError, match="no exchanges to assert on"):
        gatewaylens.assert_translation([])


def test_fixtures_update_compare_regress_and_known_gaps(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    suite.makepyfile(test_gw="""
        def test_fx(gatewaylens_capture, assert_translation, my_gateway, mode_headers):
            exchanges = gatewaylens_capture.sync(my_gateway.url, cases=["p-chat", "p-messages"], headers=mode_headers)
            assert_translation(exchanges, fixture=True)
    """)
    fx_dir = suite.path / "tests" / "gatewaylens" / "fixtures"
    res = suite.runpytest_subprocess()
    res.assert_outcomes(failed=1)  # no fixture yet, and not told to write one
    assert "no fixture" in res.stdout.str() and "--gatewaylens-update" in res.stdout.str()

    res = suite.runpytest_subprocess("--gatewaylens-update")
    res.assert_outcomes(passed=1)
    assert "gatewaylens: fixtures written by 1 test(s) (--gatewaylens-update)" in res.stdout.str()
    written = sorted(p.relative_to(fx_dir).as_posix() for p in fx_dir.rglob("*.json"))
    assert written == ["mygw/p-chat.openai.json", "mygw/p-messages.openai.json"]
    assert json.loads((fx_dir / "mygw" / "p-chat.openai.json").read_text())["gateway"] == "mygw"

    suite.runpytest_subprocess().assert_outcomes(passed=1)  # unchanged

    # the gateway now calls its upstream twice: a regression, named with its behaviour
    monkeypatch.setenv("GWMODE", "double")
    res = suite.runpytest_subprocess()
    res.assert_outcomes(failed=1)
    out = res.stdout.str()
    assert "REGRESSION mygw/p-chat[openai]: call (call)[*] duplicated_call: new (error) e.g. (call)[1]" in out
    assert "REGRESSION mygw/p-chat[openai]: upstream calls" not in out  # a change, not a regression
    assert "behaviours of the failing exchanges:" in out and "error mygw chat->openai call (call)[*] duplicated_call" in out

    # accepted in a known-gaps file: the test passes, the change is a warning
    (suite.path / "gaps.yaml").write_text(
        "format_version: 1\ngaps:\n"
        "  - {gateway: mygw, route: chat->openai, direction: call, path: '(call)[*]', kind: duplicated_call}\n"
        "  - {gateway: mygw, route: messages->openai, direction: call, path: '(call)[*]', kind: duplicated_call}\n")
    res = suite.runpytest_subprocess("--gatewaylens-known-gaps", "gaps.yaml")
    res.assert_outcomes(passed=1, warnings=1)
    assert "TranslationChanged" in res.stdout.str() and "upstream calls 1 -> 2" in res.stdout.str()
    # ... unless the test asks for no errors at all
    suite.makepyfile(test_gw2="""
        def test_no_errors(gatewaylens_capture, assert_translation, my_gateway, mode_headers):
            exchanges = gatewaylens_capture.sync(my_gateway.url, cases=["p-chat"], headers=mode_headers)
            assert_translation(exchanges, no_errors=True, fixture=True)
    """)
    res = suite.runpytest_subprocess("--gatewaylens-known-gaps", "gaps.yaml", "test_gw2.py")
    res.assert_outcomes(failed=1)
    assert "error mygw chat->openai call (call)[*] duplicated_call:" in res.stdout.str()


def test_single_fixture_file_marker_and_profile(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_gw="""
        import pytest
        from gatewaylens import GatewayProfile
        from gatewaylens.capture.selection import custom_profile

        pytestmark = pytest.mark.gatewaylens(cases=["p-chat"])

        @pytest.mark.gatewaylens(gateway="marked")
        def test_one_file(gatewaylens_capture, assert_translation, my_gateway):
            exchanges = gatewaylens_capture.sync(my_gateway.url)
            assert [e.gateway for e in exchanges] == ["marked"]
            assert_translation(exchanges, fixture="one.json", exact=True)

        def test_profile(gatewaylens_capture, assert_translation, my_gateway):
            prof = custom_profile("profiled", my_gateway.url, "openai")
            exchanges = gatewaylens_capture.sync(prof)
            assert [e.gateway for e in exchanges] == ["profiled"]
            assert_translation(exchanges, no_warnings=True)

        def test_one_file_needs_one_exchange(gatewaylens_capture, assert_translation, my_gateway):
            exchanges = gatewaylens_capture.sync(my_gateway.url, cases=["p-chat", "p-messages"])
            assert_translation(exchanges, fixture="one.json")
    """)
    res = suite.runpytest_subprocess("--gatewaylens-update", "-k", "one_file and not needs")
    res.assert_outcomes(passed=1)
    assert json.loads((suite.path / "tests" / "gatewaylens" / "fixtures" / "one.json").read_text())["case_id"] == "p-chat"
    res = suite.runpytest_subprocess()
    res.assert_outcomes(passed=2, failed=1)
    assert "one fixture file holds one exchange, got 2" in res.stdout.str()


def test_bad_options_are_usage_errors(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_x="def test_x(): pass\n")
    res = suite.runpytest_subprocess("--gatewaylens-upstream", "azure")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert "--gatewaylens-upstream: expected openai or anthropic, got 'azure'" in res.stderr.str()


def test_the_plugin_is_the_pytest11_entry_point(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_x="def test_x(gatewaylens_mock):\n    assert gatewaylens_mock.url.startswith('http://127.0.0.1:')\n")
    suite.runpytest_subprocess().assert_outcomes(passed=1)
    res = suite.runpytest_subprocess("-p", "no:gatewaylens")
    res.assert_outcomes(errors=1)
    assert "fixture 'gatewaylens_mock' not found" in res.stdout.str()


def test_the_documented_example_suite_runs(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/examples/pytest/, copied as is into a fresh project, against the test gateway."""
    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "pytest"
    for name in ("conftest.py", "test_translation.py"):
        (pytester.path / name).write_text((example / name).read_text())
    pytester.runpytest_subprocess().assert_outcomes(skipped=3)  # no GATEWAY_CMD: says how to set it
    monkeypatch.setenv("GATEWAY_CMD", f"{sys.executable} {TESTGW} --name mygw --port {{port}} --upstream {{upstream}}")
    res = pytester.runpytest_subprocess("--gatewaylens-update")
    res.assert_outcomes(passed=3)
    fixtures = sorted(p.name for p in (pytester.path / "tests" / "gatewaylens" / "fixtures" / "mygw").iterdir())
    assert fixtures == ["basic-chat-stream.openai.json", "basic-chat.openai.json"]
    pytester.runpytest_subprocess().assert_outcomes(passed=3)
