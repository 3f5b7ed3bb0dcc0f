"""Processes the benchmarks start: the mock (own process) and the load generator (own process)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from gatewaylens.capture.launch import free_port

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def pin(pid: int, cpu: int) -> None:
    """Give the mock and the load generator a core each (on a 2-core machine they otherwise
    migrate between cores and the on/off comparison mostly measures scheduling noise)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) >= 2:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {cpus[cpu % len(cpus)]})


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


class MockProcess:
    """``python -m gatewaylens.mock`` on a free loopback port, quiet, in its own process."""

    def __init__(self, *, record: bool = True, max_records: int | None = None, pin_cpu: int | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [PY, "-m", "gatewaylens.mock", "--host", "127.0.0.1", "--port", str(self.port), "--quiet"]
        if not record:
            cmd.append("--no-record")
        if max_records is not None:
            cmd += ["--max-records", str(max_records)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if pin_cpu is not None:
            pin(self.proc.pid, pin_cpu)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mock exited with code {self.proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/__mock/health", timeout=1, trust_env=False).status_code == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("mock not ready within 20 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> MockProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def mock_processes(**kw: Any) -> Iterator[MockProcess]:
    m = MockProcess(**kw)
    try:
        yield m
    finally:
        m.stop()


def load(url: str, body: dict[str, Any], *, headers: dict[str, str] | None = None, concurrency: int = 32,
         duration: float = 3.0, warmup: float = 0.5, max_requests: int = 1_000_000,
         pin_cpu: int | None = None) -> dict[str, Any]:
    """Run ``bench.loadgen`` in a separate process against ``url``; its JSON result."""
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as fh:
        fh.write(json.dumps(body).encode())
        body_file = fh.name
    cmd = [PY, "-m", "bench.loadgen", "--url", url, "--body-file", body_file, "--concurrency", str(concurrency),
           "--duration", str(duration), "--warmup", str(warmup), "--max-requests", str(max_requests)]
    for k, v in (headers or {}).items():
        cmd += ["--header", f"{k}:{v}"]
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if pin_cpu is not None:
            pin(proc.pid, pin_cpu)
        try:
            stdout, stderr = proc.communicate(timeout=duration + warmup + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise RuntimeError("load generator did not finish in time") from None
        res = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    finally:
        os.unlink(body_file)
    if res.returncode != 0:
        raise RuntimeError(f"load generator failed: {res.stderr.strip().splitlines()[-1:]}")
    out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return out
