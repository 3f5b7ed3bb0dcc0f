"""``gatewaylens probe`` and ``analyze show``: one request, one exchange, read in the terminal.

Against a URL: the test gateway (tests/capture_testgw.py, whose source is the ground truth: it
rewrites ``model`` to ``<name>-<model>`` and adds ``x-testgw: <name>``). Launched: LiteLLM 1.106.12
(slow), whose expected drops are cited from its source below.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gatewaylens.analyze.pipeline import analyze_run
from gatewaylens.analyze.synthetic import write_synthetic_run
from gatewaylens.capture.launch import PROJECT_ROOT, free_port
from gatewaylens.probe import guess_dialect
from tests.conftest import CANARIES
from tests.gateway_checks import skip_unless_launchable
from tests.support.capture import Gateways

PY = sys.executable


def probe(*args: str, stdin: str | None = None, cwd: Path = PROJECT_ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "gatewaylens", "probe", *args], input=stdin, capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, check=False)


@pytest.fixture
def testgw() -> Iterator[tuple[str, int]]:
    """One test gateway named mygw, pointed at the channel of a mock the probe will start on ``port``."""
    port = free_port()
    g = Gateways(port)
    (spec,) = g.start("mygw")
    yield spec, port
    g.stop()


def one_error_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == "" and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("probe: "), lines
    return lines[0]


# --- against a URL -----------------------------------------------------------------------------


def test_probe_a_corpus_case_through_a_url(testgw: tuple[str, int]) -> None:
    spec, port = testgw
    r = probe("basic-chat", "--gateway", spec, "--mock", f"http://127.0.0.1:{port}")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for part in ("1. client request", "2. reached the upstream  POST /v1/chat/completions", "3. the client got back  HTTP 200",
                 "4. translation map"):
        assert part in out
    assert "probe basic-chat: mygw/basic-chat/openai" in out
    # the test gateway's model rewrite, as the translation map states it
    assert '"gpt-4o-mini" → "mygw-gpt-4o-mini"' in out
    assert "s in all" in out


def test_probe_json_from_stdin_with_json_output(testgw: tuple[str, int]) -> None:
    spec, port = testgw
    body = {"model": "claude-3-5-haiku-latest", "max_tokens": 97, "top_k": 5, "stream": True,
            "messages": [{"role": "user", "content": "[gwl:probe] hi"}]}
    r = probe("-", "--gateway", spec.replace("=", ":anthropic=", 1), "--mock", f"http://127.0.0.1:{port}", "--json",
              stdin=json.dumps(body))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    ex = doc["exchange"]
    assert ex["dialect"] == "messages" and ex["stream"] and ex["upstream"] == "anthropic"  # guessed: top_k
    assert doc["note"] is None
    (up,) = ex["upstream_requests"]
    assert up["path"] == "/v1/messages" and up["body_json"]["top_k"] == 5 and up["headers"]["x-testgw"] == "mygw"
    assert ex["client_response"]["frames"]  # the stream, every frame
    model = [f for f in doc["findings"] if f["direction"] == "request" and f["path"] == "model"]
    assert model and model[0]["before"] == "claude-3-5-haiku-latest" and model[0]["after"] == "mygw-claude-3-5-haiku-latest"
    assert {f["severity"] for f in doc["findings"]} <= {"error", "warn", "info"}
    sevs = [f["severity"] for f in doc["findings"]]
    assert sevs == sorted(sevs, key=["error", "warn", "info"].index)  # worst first
    assert doc["counts"] == {s: sevs.count(s) for s in ("error", "warn", "info")}


def test_probe_header_is_redacted_everywhere(testgw: tuple[str, int]) -> None:
    spec, port = testgw
    secret = CANARIES[0] if CANARIES else "sk-gwl-canary-0123456789abcdef"
    r = probe("basic-chat", "--gateway", spec, "--mock", f"http://127.0.0.1:{port}", "-H", f"authorization: Bearer {secret}",
              "--json")
    assert r.returncode == 0, r.stderr
    assert secret not in r.stdout and secret not in r.stderr
    ex = json.loads(r.stdout)["exchange"]
    assert ex["client_request"]["headers"]["authorization"].startswith("Bearer [REDACTED len=")


def test_probe_a_gateway_that_is_not_there_exits_1() -> None:
    r = probe("basic-chat", "--gateway", f"gone=http://127.0.0.1:{free_port()}")
    assert r.returncode == 1
    assert "capture error (refused)" in r.stdout and "no translation to show" in r.stdout


# --- bad input: one line, exit 2 ------------------------------------------------------------------


@pytest.mark.parametrize(("args", "stdin", "needle"), [
    (["basic-chta", "--gateway", "portkey"], None, "did you mean basic-chat"),
    (["-", "--gateway", "portkey"], "[1,", "stdin: not JSON"),
    (["-", "--gateway", "portkey"], "[1, 2]", "expected a JSON object"),
    (["-", "--gateway", "portkey"], '{"dialect": "chat", "body": {"model": "m"}, "stream": true}', "stream"),
    (["basic-chat", "--gateway", "nosuch"], None, "unknown gateway 'nosuch'"),
    (["basic-chat", "--gateway", "litellm", "--variant", "nope"], None, "--variant nope"),
    (["basic-chat", "--gateway", "litellm", "--dialect", "messages"], None, "is a chat request"),
    (["basic-chat", "--gateway", "portkey", "-H", "no-colon"], None, "--header"),
    (["basic-chat", "--gateway", "claude-code-router"], None, "claude-code-router"),
])
def test_bad_input_is_one_line(args: list[str], stdin: str | None, needle: str) -> None:
    assert needle in one_error_line(probe(*args, stdin=stdin))


def test_guess_dialect() -> None:
    assert guess_dialect({"model": "m", "input": "hi"}) == ("responses", True)
    assert guess_dialect({"model": "m", "system": "s", "messages": []}) == ("messages", True)
    assert guess_dialect({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": "x"}]}]}) == ("messages", True)
    assert guess_dialect({"model": "m", "messages": [{"role": "system", "content": "s"}]}) == ("chat", True)
    assert guess_dialect({"model": "m", "messages": [{"role": "user", "content": "hi"}]}) == ("chat", False)


# --- analyze show ---------------------------------------------------------------------------------


def show(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "gatewaylens", "analyze", "show", *args], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, timeout=60, check=False)


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = write_synthetic_run(tmp_path_factory.mktemp("show") / "run", 48)
    analyze_run(run)
    return run


def _findings(run: Path) -> list[dict[str, Any]]:
    data = json.loads((run / "findings.json").read_text(encoding="utf-8"))
    return list(data["findings"])


def test_analyze_show_prints_the_exchange_and_its_map(synthetic_run: Path) -> None:
    f = next(f for f in _findings(synthetic_run) if f["severity"] == "error" and f["direction"] == "request")
    r = show(str(synthetic_run), f["exchange_id"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f["exchange_id"])
    assert "1. client request" in r.stdout and "4. translation map" in r.stdout
    assert f["path"] in r.stdout and f["message"][:40] in r.stdout
    j = json.loads(show(str(synthetic_run), f["exchange_id"], "--json").stdout)
    assert j["exchange"]["id"] == f["exchange_id"]
    mine = sorted((x["direction"], x["kind"], x["path"]) for x in _findings(synthetic_run)
                  if x["exchange_id"] == f["exchange_id"])
    assert sorted((x["direction"], x["kind"], x["path"]) for x in j["findings"]) == mine  # same analysis as the run's


def test_analyze_show_unknown_and_ambiguous_ids(synthetic_run: Path) -> None:
    ids = [json.loads(line)["id"] for line in (synthetic_run / "exchanges.jsonl").read_text().splitlines()]
    r = show(str(synthetic_run), ids[0] + "x")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and f"did you mean {ids[0]}" in r.stderr
    gateway = ids[0].split("/")[0]
    r = show(str(synthetic_run), gateway)
    assert r.returncode == 2 and "is ambiguous" in r.stderr and r.stderr.count("\n") == 1
    r = show(str(synthetic_run / "nope"), ids[0])
    assert r.returncode == 2 and "run directory not found" in r.stderr


# --- a launched built-in: LiteLLM (slow) ------------------------------------------------------------


@pytest.mark.slow
def test_probe_litellm_launched_shows_its_drops() -> None:
    skip_unless_launchable("litellm")
    r = probe("sampling-messages-full", "--gateway", "litellm", "--upstream", "openai", "--json", timeout=240)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    ex = doc["exchange"]
    assert ex["gateway"] == "litellm" and ex["upstream"] == "openai" and ex["variant"] == ""
    assert len(ex["upstream_requests"]) == 1  # one request: the pass-through route is not sent as well
    # LiteLLM 1.106.12 sends Messages clients to an OpenAI upstream through its Responses adapter,
    # which has no place for top_k or stop_sequences (litellm/llms/anthropic/pass_through/
    # responses_adapters/handler.py:74,81; tests/data/ground_truth/expectations.json)
    # (the severity the analyzer gives them is its own policy; here: shown, and not as info)
    lost = {(f["direction"], f["kind"], f["path"]) for f in doc["findings"] if f["severity"] != "info"}
    assert {("request", "dropped", "top_k"), ("request", "dropped", "stop_sequences")} <= lost
    assert [u["path"] for u in ex["upstream_requests"]] == ["/v1/responses"]
    text = probe("sampling-messages-full", "--gateway", "litellm", "--upstream", "openai", timeout=240)
    assert text.returncode == 0, text.stderr
    assert "4. translation map" in text.stdout and "top_k" in text.stdout and "dropped" in text.stdout
