"""capture end to end on loopback: real mock, real HTTP, small independent test gateways.

The test gateways (tests/capture_testgw.py) forward to their own mock channel with known
rewrites (``model`` -> ``<name>-<model>``, header ``x-testgw: <name>``), so every record can be
checked to belong to the gateway and exchange it is attributed to.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatewaylens.capture.launch import LaunchContext, Launched, Launcher, LaunchError
from gatewaylens.capture.models import GatewayProfile, Route
from tests.conftest import CANARIES
from tests.support.capture import (
    MODELS,
    PY,
    ROOT,
    TESTGW,
    Gateways,
    capture_cmd,
    case,
    exchanges,
    wait_http,
    write_corpus,
)


def run_capture(tmp_path: Path, mock_port: int, gateways: list[str], *extra: str,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(capture_cmd(tmp_path, mock_port, gateways, *extra), cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def by_case(exs: list[dict[str, Any]], gateway: str) -> dict[str, dict[str, Any]]:
    return {e["case_id"]: e for e in exs if e["gateway"] == gateway}


def window(e: dict[str, Any]) -> tuple[float, float]:
    start = datetime.fromisoformat(e["timings"]["started"]).timestamp()
    return start, start + e["timings"]["duration_ms"] / 1000


# ---------------------------------------------------------------------------------------------


def test_concurrent_gateways_attribution_retries_streams(tmp_path: Path, mock_port: int, gws: Gateways) -> None:
    names = ["gw-a", "gw-b", "gw-c"]
    specs = gws.start(*names)
    cases = [case(f"{d}-{'s' if s else 'n'}", d, s) for d in ("chat", "responses", "messages") for s in (False, True)]
    cases += [
        case("retry-500", mode="retry", script=[{"status": 500}]),
        case("double", mode="double"),
        case("garbage", mode="garbage"),
        case("slow-1", mode="slow", headers={"x-testgw-sleep": "0.3"}),
        case("slow-2", mode="slow", headers={"x-testgw-sleep": "0.3"}),
        case("upstream-429", script=[{"status": 429}]),
        case("both-upstreams", upstream=["openai", "anthropic"]),
    ]
    write_corpus(tmp_path, cases)
    t0 = time.monotonic()
    res = run_capture(tmp_path, mock_port, specs, "--json", "--timeout", "10")
    elapsed = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    run_dir = Path(summary["run_dir"])
    if not run_dir.is_absolute():
        run_dir = tmp_path / run_dir
    assert (tmp_path / "output" / "latest").resolve() == run_dir.resolve()
    assert not os.path.isabs(os.readlink(tmp_path / "output" / "latest"))
    exs = exchanges(run_dir)
    # both-upstreams runs once per gateway: each was declared with an openai upstream, so its
    # anthropic run is not run, and said once per gateway (not as an "unsupported" exchange)
    assert len(exs) == 3 * len(cases)
    assert len({e["id"] for e in exs}) == len(exs)
    assert not any(e["upstream"] == "anthropic" for e in exs)
    for row in summary["gateways"]:
        assert row["not_run"] == ("1 case run(s) for an anthropic upstream: this gateway was declared with an openai "
                                  f"upstream (--upstream, or --gateway {row['gateway']}:KIND=URL)")
        assert row["unsupported"] == 0
        assert res.stderr.count(f"{row['gateway']}: not run: 1 case run(s)") == 2  # at start and under the table
    for e in exs:
        g = e["gateway"]
        assert e["status"] == "ok", e
        model = e["client_request"]["body"]["model"]
        for r in e["upstream_requests"]:
            # Attribution: only this gateway's channel, header and rewrite; never a neighbour's.
            assert r["channel"] == g
            assert r["headers"]["x-testgw"] == g
            assert r["body_json"]["model"] == f"{g}-{model}"
    for g in names:
        ex = by_case(exs, g)
        for d in ("chat", "responses", "messages"):
            for s in ("n", "s"):
                e = ex[f"{d}-{s}"]
                assert len(e["upstream_requests"]) == 1
                assert e["upstream_requests"][0]["path"] == f"/v1/{'chat/completions' if d == 'chat' else d}"
                cr = e["client_response"]
                assert cr["status"] == 200
                if s == "s":
                    assert cr["stream"] and cr["frames"], e
                    assert e["upstream_requests"][0]["response"]["frames"]
                    # Every frame the mock sent reached the client, in order (the gateway relays bytes).
                    assert [f["data"] for f in cr["frames"]] == [f["data"] for f in e["upstream_requests"][0]["response"]["frames"]]
                    assert all(f["offset_ms"] >= 0 for f in cr["frames"])
                    assert e["notes"] == []
                else:
                    assert isinstance(cr["body"], dict) and cr["frames"] is None
        retry = ex["retry-500"]["upstream_requests"]
        assert [r["response"]["status"] for r in retry] == [500, 200]
        assert retry[0]["seq"] < retry[1]["seq"]
        assert [r["response"]["status"] for r in ex["double"]["upstream_requests"]] == [200, 200]
        garbage = ex["garbage"]
        assert garbage["upstream_requests"] == []
        assert garbage["client_response"]["body"] is None and "not json" in garbage["client_response"]["text"]
        e429 = ex["upstream-429"]
        assert e429["status"] == "ok" and e429["error"]["kind"] == "http"
        assert e429["client_response"]["status"] == 429
    # Gateways ran concurrently: slow exchanges of different gateways overlap in time, and the
    # run took well under the sequential sum of the slow cases (3 gateways x 2 x 0.3 s).
    slow = [window(by_case(exs, g)["slow-1"]) for g in names]
    assert max(s for s, _ in slow) < min(e for _, e in slow)
    assert elapsed < 30
    rows = {r["gateway"]: r for r in summary["gateways"]}
    assert rows["gw-a"]["ok"] == len(cases) and rows["gw-a"]["unsupported"] == 0
    assert rows["gw-a"]["upstream_calls"] == sum(len(e["upstream_requests"]) for e in exs if e["gateway"] == "gw-a")
    info = json.loads((run_dir / "run.json").read_text())
    assert info["finished"] and info["interrupted"] is False
    assert [g["channel_url"] for g in info["gateways"]] == [f"http://127.0.0.1:{mock_port}/ch/{n}" for n in names]
    assert len(info["corpus_sha256"]) == 64
    for n in names:  # the channel URL each gateway must use is printed
        assert f"http://127.0.0.1:{mock_port}/ch/{n}" in res.stderr


def test_timeout_killed_gateway_and_late_records(tmp_path: Path, mock_port: int, gws: Gateways) -> None:
    specs = gws.start("gw")
    write_corpus(tmp_path, [
        case("first"),
        case("hang", mode="hang"),
        # The mock answers this one after 1.5 s; the client gives up at 1.0 s.  Its record is
        # completed while the next (slow, 0.8 s) exchange is in flight and must not be attributed there.
        case("late-upstream", script=[{"delay_ms": 1500}]),
        case("after-late", mode="slow", headers={"x-testgw-sleep": "0.8"}, text="after"),
        case("stream-dies", stream=True, mode="die-mid-stream"),
        case("refused-1"),
        case("refused-2", stream=True),
    ])
    res = run_capture(tmp_path, mock_port, specs, "--timeout", "1.0", "--out", "run")
    assert res.returncode == 1, res.stderr
    exs = {e["case_id"]: e for e in exchanges(tmp_path / "run")}
    assert list(exs) == ["first", "hang", "late-upstream", "after-late", "stream-dies", "refused-1", "refused-2"]
    assert exs["first"]["status"] == "ok"
    assert exs["hang"]["status"] == "error" and exs["hang"]["error"]["kind"] == "timeout"
    late = exs["late-upstream"]
    assert late["error"]["kind"] == "timeout"
    # The mock reports the delayed request as in flight, so capture waits for it (within its
    # settle bound) and the record lands in its own exchange, never in the next one.
    assert [r["response"]["scripted"] for r in late["upstream_requests"]] == ["delay=1500ms"]
    after = exs["after-late"]
    assert after["status"] == "ok", after
    assert [r["body_json"]["messages"][0]["content"] for r in after["upstream_requests"]] == ["after"]
    sd = exs["stream-dies"]
    assert sd["status"] == "error" and sd["error"]["kind"] in ("broken_stream", "protocol"), sd["error"]
    # refused-1 may reach the gateway's socket while its process is still exiting (accepted, then
    # reset: a protocol error) on a loaded machine; by refused-2 the port is closed for certain.
    assert exs["refused-1"]["status"] == "error" and exs["refused-1"]["error"]["kind"] in ("refused", "protocol")
    assert exs["refused-2"]["status"] == "error" and exs["refused-2"]["error"]["kind"] == "refused"
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["counts"]["error"] >= 5 and info["interrupted"] is False


def test_mock_restart_marks_mock_lost(tmp_path: Path, mock_port: int, gws: Gateways) -> None:
    def start_mock() -> subprocess.Popen[bytes]:
        p = subprocess.Popen([PY, "-m", "gatewaylens.mock", "--port", str(mock_port), "-q"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        wait_http(f"http://127.0.0.1:{mock_port}/__mock/health")
        return p

    mock = start_mock()
    try:
        specs = gws.start("gw")
        write_corpus(tmp_path, [
            case("before"),
            case("during", mode="slow", headers={"x-testgw-sleep": "2.0"}),
            case("after-1"),
            case("after-2", stream=True),
        ])
        proc = subprocess.Popen(capture_cmd(tmp_path, mock_port, specs, "--no-start-mock", "--out", "run"),
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        flag = tmp_path / "slow-gw"
        deadline = time.monotonic() + 20
        while not flag.exists():
            assert time.monotonic() < deadline, "the slow exchange never started"
            time.sleep(0.02)
        old = httpx.get(f"http://127.0.0.1:{mock_port}/__mock/health", trust_env=False).json()["instance"]
        mock.terminate()
        mock.wait(10)
        mock = start_mock()
        new = httpx.get(f"http://127.0.0.1:{mock_port}/__mock/health", trust_env=False).json()["instance"]
        assert new != old
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
    finally:
        mock.terminate()
        mock.wait(10)
    exs = {e["case_id"]: e for e in exchanges(tmp_path / "run")}
    assert exs["before"]["status"] == "ok" and exs["before"]["upstream_requests"][0]["instance"] == old
    lost = exs["during"]
    assert lost["status"] == "error" and lost["error"]["kind"] == "mock_lost"
    assert lost["upstream_requests"] == []  # its record lives in the new instance: never attributed
    assert "restarted" in lost["error"]["message"]
    for cid in ("after-1", "after-2"):
        e = exs[cid]
        assert e["status"] == "ok", e
        assert [r["instance"] for r in e["upstream_requests"]] == [new]
        assert e["upstream_requests"][0]["body_json"]["model"] == f"gw-{MODELS['chat']}"


def test_mock_gone_fails_fast(tmp_path: Path, mock_port: int, gws: Gateways) -> None:
    mock = subprocess.Popen([PY, "-m", "gatewaylens.mock", "--port", str(mock_port), "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        wait_http(f"http://127.0.0.1:{mock_port}/__mock/health")
        specs = gws.start("gw")
        write_corpus(tmp_path, [case("before"), case("during", mode="slow", headers={"x-testgw-sleep": "0.5"}),
                                case("never-1"), case("never-2")])
        proc = subprocess.Popen(capture_cmd(tmp_path, mock_port, specs, "--no-start-mock", "--out", "run", "--json"),
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not (tmp_path / "slow-gw").exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        mock.kill()
        mock.wait(10)
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - t0 < 15, "a vanished mock must fail fast"
    finally:
        if mock.poll() is None:
            mock.kill()
            mock.wait()
    assert proc.returncode == 1, err
    exs = {e["case_id"]: e for e in exchanges(tmp_path / "run")}
    assert list(exs) == ["before", "during"]  # nothing attributed after the mock went away
    assert exs["during"]["status"] == "error" and exs["during"]["error"]["kind"] == "mock_lost"
    row = json.loads(out)["gateways"][0]
    assert row["aborted"] and row["not_captured"] == 2
    assert "gw: stopped:" in err


def test_sigint_keeps_completed_then_resume_finishes(tmp_path: Path, mock_port: int, gws: Gateways) -> None:
    specs = gws.start("gw")
    ids = [f"c{i}" for i in range(8)]
    write_corpus(tmp_path, [case(i, mode="slow", headers={"x-testgw-sleep": "0.25"}) for i in ids])
    proc = subprocess.Popen(capture_cmd(tmp_path, mock_port, specs, "--out", "run"), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jl = tmp_path / "run" / "exchanges.jsonl"
    deadline = time.monotonic() + 30
    while not (jl.exists() and len(jl.read_text().splitlines()) >= 2):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    first = jl.read_text()
    done = [json.loads(x) for x in first.splitlines()]
    assert 2 <= len(done) < len(ids)
    # Completed exchanges are kept; the one in flight, if any, is kept too, marked interrupted.
    assert all(e["status"] == "ok" for e in done[:-1])
    assert done[-1]["status"] == "ok" or done[-1]["error"]["kind"] == "interrupted", done[-1]
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["interrupted"] is True and info["counts"]["exchanges"] == len(done)
    # --resume captures an interrupted exchange again; the completed lines stay byte for byte.
    if done[-1]["status"] != "ok":
        first = "".join(line + "\n" for line in first.splitlines()[:-1])
    # A run killed while writing leaves a truncated last line: resume drops it, keeps the rest.
    with jl.open("a") as fh:
        fh.write('{"id": "gw/c7/openai", "case_')
    res = run_capture(tmp_path, mock_port, specs, "--out", "run", "--resume")
    assert res.returncode == 0, res.stderr
    text = jl.read_text()
    assert text.startswith(first)
    final = [json.loads(x) for x in text.splitlines()]
    assert [e["case_id"] for e in final] == ids
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["interrupted"] is False and info["counts"]["exchanges"] == len(ids)
    assert len(info["options"]["resumed"]) == 1


def test_sigterm_exit_143(tmp_path: Path, mock_port: int, gws: Gateways) -> None:
    specs = gws.start("gw")
    write_corpus(tmp_path, [case(f"c{i}", mode="slow", headers={"x-testgw-sleep": "0.3"}) for i in range(6)])
    proc = subprocess.Popen(capture_cmd(tmp_path, mock_port, specs, "--out", "run"), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jl = tmp_path / "run" / "exchanges.jsonl"
    deadline = time.monotonic() + 30
    while not (jl.exists() and jl.read_text().count("\n") >= 1):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert json.loads((tmp_path / "run" / "run.json").read_text())["interrupted"] is True
    for line in jl.read_text().splitlines():
        json.loads(line)


def test_canary_secrets_reach_no_file_and_no_terminal(tmp_path: Path, mock_port: int, gws: Gateways) -> None:
    specs = gws.start("gw")
    auth = {"Authorization": f"Bearer {CANARIES[0]}", "x-api-key": CANARIES[1], "Cookie": f"session={CANARIES[3]}",
            "x-custom-token": CANARIES[2]}
    write_corpus(tmp_path, [
        case("plain", headers=auth),
        case("stream", stream=True, headers=auth),
        case("echo", mode="echo", headers=auth),  # the gateway echoes the key in its answer
        case("messages", dialect="messages", headers=auth),
    ])
    url_with_key = specs[0] + f"/?api_key={CANARIES[2]}"
    res = run_capture(tmp_path, mock_port, [url_with_key], "--json")
    assert res.returncode == 0, res.stderr
    files = [p for p in (tmp_path / "output").rglob("*") if p.is_file()]
    assert {p.name for p in files} == {"run.json", "exchanges.jsonl", "corpus.json"}
    for p in files:
        text = p.read_text()
        for c in CANARIES:
            assert c not in text, f"{c} leaked into {p.name}"
    for c in CANARIES:
        assert c not in res.stdout and c not in res.stderr
    exs = {e["case_id"]: e for e in exchanges(files[0].parent)}
    # Redacted, yet still comparable: the client's key and what the gateway forwarded share a fingerprint.
    sent = exs["plain"]["client_request"]["headers"]["authorization"]
    fwd = exs["plain"]["upstream_requests"][0]["headers"]["authorization"]
    assert sent.startswith("Bearer [REDACTED") and sent == fwd
    assert "api_key=%5BREDACTED" in exs["plain"]["client_request"]["url"] or "api_key=[REDACTED" in exs["plain"]["client_request"]["url"]
    # The echoed key is redacted structurally (the scheme word stays) with the key's own fingerprint.
    echoed = exs["echo"]["client_response"]["body"]["echo_auth"]
    assert echoed.startswith("Bearer [REDACTED len=") and echoed == sent


# --- --launch: lifecycle through the launcher registry (in-process, test launchers) -----------



class _TestGatewayLauncher(Launcher):
    name = "test-capture-tgw"
    ready_timeout_s = 20.0
    started: list[tuple[subprocess.Popen[bytes], Path]] = []  # noqa: RUF012 - test bookkeeping

    def available(self) -> str | None:
        return None

    def version(self) -> str | None:
        return "tgw-1.0"

    async def start(self, ctx: LaunchContext) -> Launched:
        proc = self.spawn([PY, str(TESTGW), "--name", "tl-ok", "--port", str(ctx.port), "--upstream", ctx.channel_url], ctx)
        _TestGatewayLauncher.started.append((proc, ctx.workdir))
        await self.wait_ready(f"http://127.0.0.1:{ctx.port}/health")
        return Launched(base_url=f"http://127.0.0.1:{ctx.port}")


class _MissingLauncher(Launcher):
    name = "test-capture-missing"

    def available(self) -> str | None:
        return "test-capture-missing is not installed here (nothing to install)"


class _BrokenLauncher(Launcher):
    name = "test-capture-broken"

    def available(self) -> str | None:
        return None

    async def start(self, ctx: LaunchContext) -> Launched:
        raise LaunchError("test-capture-broken exited with code 1 before it was ready: bad config")


def _profile(name: str, launcher: str) -> GatewayProfile:
    return GatewayProfile(name=name, base_url="http://127.0.0.1:9", launcher=launcher, routes=[
        Route(dialect="chat", upstream="openai", path="/v1/chat/completions"),
        Route(dialect="messages", upstream="anthropic", path="/v1/messages", model="renamed-by-profile"),
    ])


def test_launch_starts_skips_and_stops(tmp_path: Path, mock_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from gatewaylens.capture import gateways
    from gatewaylens.capture.cli import main

    for launcher in (_TestGatewayLauncher, _MissingLauncher, _BrokenLauncher):
        monkeypatch.setitem(gateways.LAUNCHERS, launcher.name, launcher)
    for prof in (_profile("tl-ok", _TestGatewayLauncher.name), _profile("tl-missing", _MissingLauncher.name),
                 _profile("tl-broken", _BrokenLauncher.name)):
        monkeypatch.setitem(gateways.PROFILES, prof.name, prof)
    _TestGatewayLauncher.started.clear()
    write_corpus(tmp_path, [case("c1"), case("m1", dialect="messages", stream=True, upstream=["openai", "anthropic"])])
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["--gateways", "tl-ok,tl-missing,tl-broken", "--launch", "--corpus", "corpus.json",
                                    "--mock", f"http://127.0.0.1:{mock_port}", "--out", "run", "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    assert "tl-missing: skipped: test-capture-missing is not installed here (nothing to install)" in res.stderr
    assert "tl-broken: skipped: test-capture-broken exited with code 1 before it was ready: bad config" in res.stderr
    (proc, workdir), = _TestGatewayLauncher.started
    assert proc.poll() is not None, "the launched gateway must be stopped at the end"
    assert not workdir.exists()
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    gw = {g["name"]: g for g in info["gateways"]}
    assert gw["tl-ok"]["launched"] == "local" and gw["tl-ok"]["version"] == "tgw-1.0"
    assert gw["tl-ok"]["base_url"] != "http://127.0.0.1:9"
    assert gw["tl-missing"]["skipped"] and gw["tl-broken"]["skipped"]
    exs = {e["id"]: e for e in exchanges(tmp_path / "run")}
    assert set(exs) == {"tl-ok/c1/openai", "tl-ok/m1/openai", "tl-ok/m1/anthropic"}
    assert exs["tl-ok/c1/openai"]["status"] == "ok" and exs["tl-ok/c1/openai"]["upstream_requests"]
    assert exs["tl-ok/m1/openai"]["status"] == "unsupported"
    anth = exs["tl-ok/m1/anthropic"]
    # The route's model replaces the case's model.
    assert anth["client_request"]["body"]["model"] == "renamed-by-profile"
    assert anth["upstream_requests"][0]["body_json"]["model"] == "tl-ok-renamed-by-profile"
    rows = {r["gateway"]: r for r in json.loads(res.stdout)["gateways"]}
    assert rows["tl-missing"]["skipped"] and rows["tl-ok"]["ok"] == 2 and rows["tl-ok"]["unsupported"] == 1

    # Nothing launchable at all: exit 1, never a silent empty success.
    res = CliRunner().invoke(main, ["--gateways", "tl-missing", "--launch", "--corpus", "corpus.json",
                                    "--mock", f"http://127.0.0.1:{mock_port}", "--out", "run2"], catch_exceptions=False)
    assert res.exit_code == 1
