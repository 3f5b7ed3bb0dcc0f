"""Helpers for tests that run capture against scripted test gateways (tests/capture_testgw.py)
and the real mock: cases, corpus files and the gateway processes.  Shared here so that no test
module imports another."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from gatewaylens.capture.launch import free_port

__all__ = ["MODELS", "PY", "ROOT", "TESTGW", "Gateways", "capture_cmd", "case", "exchanges", "free_port", "wait_http",
           "write_corpus"]

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
TESTGW = ROOT / "tests" / "capture_testgw.py"
MODELS = {"chat": "gpt-4o-mini", "responses": "gpt-4.1-mini", "messages": "claude-3-5-haiku-latest"}


def wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0, trust_env=False).status_code == 200:
                return
        time.sleep(0.05)
    raise AssertionError(f"{url} not ready")


def case(cid: str, dialect: str = "chat", stream: bool = False, mode: str | None = None,
         script: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None,
         upstream: str | list[str] = "openai", text: str = "hi") -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODELS[dialect]}
    if dialect == "responses":
        body["input"] = text
    else:
        body["messages"] = [{"role": "user", "content": text}]
    if dialect == "messages":
        body["max_tokens"] = 64
    if stream:
        body["stream"] = True
    c: dict[str, Any] = {"id": cid, "dialect": dialect, "stream": stream, "note": "test", "body": body,
                         "upstream": upstream, "headers": dict(headers or {})}
    if mode:
        c["headers"]["x-testgw-mode"] = mode
    if script:
        c["script"] = script
    return c


class Gateways:
    """Test gateway processes, each pointed at its own channel of the mock at ``mock_port``."""

    def __init__(self, mock_port: int, signal_dir: Path | None = None) -> None:
        self.mock_port = mock_port
        self.signal_dir = signal_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.urls: dict[str, str] = {}

    def start(self, *names: str) -> list[str]:
        for name in names:
            port = free_port()
            cmd = [PY, str(TESTGW), "--name", name, "--port", str(port),
                   "--upstream", f"http://127.0.0.1:{self.mock_port}/ch/{name}"]
            if self.signal_dir:
                cmd += ["--signal-dir", str(self.signal_dir)]
            self.procs[name] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.urls[name] = f"http://127.0.0.1:{port}"
        for name in names:
            wait_http(self.urls[name] + "/health")
        return [f"{n}={self.urls[n]}" for n in names]

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()


def write_corpus(tmp_path: Path, cases: list[dict[str, Any]]) -> Path:
    p = tmp_path / "corpus.json"
    p.write_text(json.dumps({"cases": cases}))
    return p


def capture_cmd(tmp_path: Path, mock_port: int, gateways: list[str], *extra: str) -> list[str]:
    cmd = [PY, "-m", "gatewaylens.capture", "--corpus", str(tmp_path / "corpus.json"),
           "--mock", f"http://127.0.0.1:{mock_port}", *extra]
    for g in gateways:
        cmd += ["--gateway", g]
    return cmd


def exchanges(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "exchanges.jsonl").read_text().splitlines()]
