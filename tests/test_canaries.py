"""Canary suite: every shape of secret the issue lists, sent by a test gateway and by a corpus case,
must appear in no file under the run directory, the mock's record file, analyze's outputs
(findings, report, prompts, fixtures) or any terminal stream.

The gateway is tests/capture_testgw.py in ``canary`` mode: it adds its own secrets to what it
sends upstream (JSON body keys, JSON-valued headers, credential headers, a key in a URL path,
``?pwd=``) and echoes everything back (its upstream request, the client's headers and body, its
upstream key inside an error-like message, a response header, a debug SSE frame).  The corpus
case carries the client-side shapes in its body, its headers, and the gateway URL (path and query).

Each canary is also checked to have *arrived* where it was sent (redacted), so a test that sent
nothing cannot pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gatewaylens.capture.launch import free_port
from tests.capture_testgw import GATEWAY_CANARIES
from tests.support.capture import MODELS, wait_http

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TESTGW = ROOT / "tests" / "capture_testgw.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

#: The client-side shapes, carried by the corpus case and the gateway URL.
CLIENT_CANARIES = {
    "body.api_key": "cnryClBodyApiKey21",
    "body.aws_secret_access_key": "cnryClAwsSecretAccess22",
    "body.password": "cnryClPassword23",
    "body.extra.openai.key": "cnryClExtraOpenaiKey24",
    "body.nested_jwt": "eyJhbGciOiJIUzI1NiJ9.eyJjbnJ5IjoiY2wifQ.cnryClJwtSig25",
    "header.x-portkey-config.api_key": "cnryClPortkeyCfgKey26",
    "header.x-portkey-config.targets[].api_key": "cnryClPortkeyTarget27",
    "header.x-portkey-custom-headers.Authorization": "cnryClCustomAuth28",
    "header.x-github-pat": "cnryClGithubPat29",
    "header.x-upstream-cred": "cnryClUpstreamCred30",
    "header.authorization": "sk-cnryClClientKey31",
    "url.path": "sk-cnryClPathKey32",
    "url.query.pwd": "cnryClQueryPwd33",
}
ALL = {**{f"gateway {k}": v for k, v in GATEWAY_CANARIES.items()}, **{f"client {k}": v for k, v in CLIENT_CANARIES.items()}}


def canary_case(cid: str, dialect: str, stream: bool) -> dict[str, Any]:
    c = CLIENT_CANARIES
    body: dict[str, Any] = {"model": MODELS[dialect]}
    text = f"[gwl:{cid}] hello"
    if dialect == "responses":
        body["input"] = text
    else:
        body["messages"] = [{"role": "user", "content": text}]
    if dialect == "messages":
        body["max_tokens"] = 64
    if stream:
        body["stream"] = True
    body.update({
        "api_key": c["body.api_key"],
        "aws_secret_access_key": c["body.aws_secret_access_key"],
        "password": c["body.password"],
        "extra": {"openai": {"key": c["body.extra.openai.key"]}},
        "metadata": {"deep": {"er": [{"still": {"jwt_here": c["body.nested_jwt"]}}]}},
    })
    headers = {
        "x-testgw-mode": "canary",
        "x-portkey-config": json.dumps({"api_key": c["header.x-portkey-config.api_key"],
                                        "targets": [{"api_key": c["header.x-portkey-config.targets[].api_key"]}]}),
        "x-portkey-custom-headers": json.dumps({"Authorization": c["header.x-portkey-custom-headers.Authorization"]}),
        "x-github-pat": c["header.x-github-pat"],
        "x-upstream-cred": c["header.x-upstream-cred"],
        "authorization": f"Bearer {c['header.authorization']}",
    }
    return {"id": cid, "dialect": dialect, "stream": stream, "note": "canaries", "body": body,
            "upstream": "openai", "headers": headers}


CASES = [canary_case("canary-chat", "chat", False), canary_case("canary-chat-stream", "chat", True),
         canary_case("canary-messages", "messages", False), canary_case("canary-responses-stream", "responses", True)]


def leaks(text: str) -> list[str]:
    return [name for name, value in ALL.items() if value in text]


def run(cmd: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("mock_kind", ["own-process", "started-by-capture"])
def test_every_secret_shape_reaches_no_file_and_no_terminal(tmp_path: Path, mock_kind: str) -> None:
    port = free_port()
    mock_url = f"http://127.0.0.1:{port}"
    record_file = tmp_path / "mock-records.jsonl"
    mock_err = tmp_path / "mock.stderr"
    mock: subprocess.Popen[bytes] | None = None
    if mock_kind == "own-process":
        # Not --quiet: the mock's per-request terminal log is one of the streams checked.
        with mock_err.open("wb") as fh:
            mock = subprocess.Popen([PY, "-m", "gatewaylens.mock", "--port", str(port), "--record-file",
                                     str(record_file)], env=ENV, stdout=fh, stderr=subprocess.STDOUT)
        wait_http(f"{mock_url}/__mock/health")
    gw_port = free_port()
    gw = subprocess.Popen([PY, str(TESTGW), "--name", "fgw", "--forward-all", "--port", str(gw_port),
                           "--upstream", f"{mock_url}/ch/fgw"], env=ENV, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{gw_port}/health")
        cases = json.loads(json.dumps(CASES))
        if mock_kind == "started-by-capture":
            # With the mock in capture's own process, the exact values it redacts reach capture's scrubber:
            # then even a shapeless gateway secret echoed in prose is caught.
            for c in cases:
                c["headers"]["x-testgw-freetext"] = "1"
        (tmp_path / "corpus.json").write_text(json.dumps({"cases": cases}))
        gw_url = (f"http://127.0.0.1:{gw_port}/k/{CLIENT_CANARIES['url.path']}"
                  f"?pwd={CLIENT_CANARIES['url.query.pwd']}")
        run_dir = tmp_path / "run"
        cmd = [PY, "-m", "gatewaylens.capture", "--corpus", str(tmp_path / "corpus.json"), "--mock", mock_url,
               "--gateway", f"fgw={gw_url}", "--out", str(run_dir), "--json"]
        if mock_kind == "own-process":
            cmd.append("--no-start-mock")
        outputs = [run(cmd, tmp_path)]
        assert outputs[0].returncode == 0, outputs[0].stderr[-2000:]
        for args in ([str(run_dir)], ["fixtures", str(run_dir), "--out", str(tmp_path / "fixtures")]):
            r = run([PY, "-m", "gatewaylens.analyze.cli", *args], tmp_path)
            assert r.returncode == 0, r.stderr[-2000:]
            outputs.append(r)
    finally:
        gw.kill()
        gw.wait()
        if mock is not None:
            mock.terminate()
            mock.wait(10)

    # --- the canaries went where they were meant to go (else this test proves nothing) -------
    exs = [json.loads(line) for line in (run_dir / "exchanges.jsonl").read_text().splitlines()]
    assert len(exs) == len(CASES) and all(e["status"] == "ok" for e in exs), [e.get("error") for e in exs]
    for e in exs:
        ups = e["upstream_requests"]
        assert len(ups) == 2, e["id"]  # the key-in-path call, then the real one
        leak_call, real = ups
        assert leak_call["response"]["status"] == 404 and "[REDACTED" in leak_call["path"]
        assert ("pwd", real["query"][0][1]) == tuple(real["query"][0]) and real["query"][0][1].startswith("[REDACTED")
        body = real["body_json"]
        for key in ("api_key", "aws_secret_access_key", "password"):
            assert body[key].startswith("[REDACTED len="), key
        assert body["extra"]["openai"]["key"].startswith("[REDACTED len=")
        assert body["metadata"]["trace"]["context"]["session"].startswith("[REDACTED len=")
        h = real["headers"]
        assert json.loads(h["x-portkey-config"])["targets"][0]["api_key"].startswith("[REDACTED")
        assert "[REDACTED" in json.loads(h["x-portkey-custom-headers"])["Authorization"]
        assert h["x-github-pat"].startswith("[REDACTED") and h["x-upstream-cred"].startswith("[REDACTED")
        assert h["authorization"].startswith("Bearer [REDACTED")
        # The client's body secrets, redacted alike on both sides: same fingerprint, so "forwarded".
        assert e["client_request"]["body"]["api_key"] == real["body_json"]["api_key"] or \
            e["client_request"]["body"]["api_key"].startswith("[REDACTED")
        cr = e["client_response"]
        echoed = cr["frames"][0]["json_data"]["gateway_debug"] if e["stream"] else cr["body"]["gateway_debug"]
        assert "Incorrect API key provided: [REDACTED" in echoed["message"]
        if mock_kind == "started-by-capture":
            assert echoed["note"].startswith("upstream credential [REDACTED len=")
        assert echoed["client_body"]["password"].startswith("[REDACTED")
        assert cr["headers"]["x-upstream-cred"].startswith("[REDACTED")
    if mock_kind == "own-process":
        records = record_file.read_text().splitlines()
        assert len(records) == 2 * len(CASES)
        log = mock_err.read_text()
        assert "/v1/chat/completions/[REDACTED" in log and "pwd=[REDACTED" in log, log[-1500:]

    # --- ...and nowhere in clear text ---------------------------------------------------------
    files = [p for d in (run_dir, tmp_path / "fixtures") for p in d.rglob("*") if p.is_file()]
    if mock_kind == "own-process":
        files += [record_file, mock_err]
    names = {p.name for p in files}
    assert {"exchanges.jsonl", "run.json", "corpus.json", "findings.json", "report.md"} <= names
    assert any(p.parent.name == "prompts" for p in files) and any(p.is_relative_to(tmp_path / "fixtures") for p in files)
    for p in files:
        found = leaks(p.read_bytes().decode("utf-8", errors="replace"))
        assert not found, f"{p.relative_to(tmp_path)} holds {found}"
    for r in outputs:
        assert not leaks(r.stdout) and not leaks(r.stderr), (r.args, leaks(r.stdout + r.stderr))
