"""Isolation: control token, channel leases, reset generations, foreign records, loopback-only bind,
and a fast clean stop (SIGINT/SIGTERM with a request in flight against a 100 s scripted delay).

The capture tests use the real mock (its own process, or started by capture) and the test gateway
(tests/capture_testgw.py) in its own process: nothing is faked.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatewaylens.capture.launch import free_port
from gatewaylens.mock.server import MockServer
from tests.support.capture import Gateways, capture_cmd, case, exchanges, wait_http, write_corpus

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TOKEN = "isolation-suite-token-1"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "[gwl:other-case] hi"}]}


# --- the mock's control API ------------------------------------------------------------------


async def test_control_calls_need_a_token_leases_are_exclusive_and_resets_counted() -> None:
    async with MockServer("127.0.0.1", 0, token=TOKEN) as mock, httpx.AsyncClient(base_url=mock.url) as c:
        admin = {"x-gwl-token": TOKEN}
        await c.post("/ch/a/v1/chat/completions", json=CHAT)
        # No token / a wrong one: refused, and nothing is reset.
        for headers, status in (({}, 401), ({"x-gwl-token": "wrong-token-x"}, 403)):
            for method, path in (("GET", "/__mock/log?channel=a"), ("POST", "/__mock/reset?channel=a"),
                                 ("POST", "/__mock/reset"), ("GET", "/__mock/last?channel=a"),
                                 ("POST", "/__mock/script?channel=a"), ("GET", "/__mock/log")):
                r = await c.request(method, path, headers=headers, json=[])
                assert r.status_code == status, (method, path, r.text)
                assert "x-gwl-token" in r.json()["error"]["message"]
        assert (await c.get("/__mock/health")).json()["channels"] == {"a": 1}  # health needs no token
        # A lease: its token opens its own channel only; a second client is refused (409).
        lease = (await c.post("/__mock/lease?channel=a", json={"holder": "run-1", "ttl_s": 30})).json()
        mine = {"x-gwl-token": lease["token"]}
        assert lease["generation"] == 0
        assert (await c.get("/__mock/log?channel=a", headers=mine)).status_code == 200
        assert (await c.get("/__mock/log?channel=b", headers=mine)).status_code == 403
        assert (await c.get("/__mock/log", headers=mine)).status_code == 403  # every channel: admin only
        busy = await c.post("/__mock/lease?channel=a", json={"holder": "run-2"})
        assert busy.status_code == 409 and "run-1" in busy.json()["error"]["message"]
        # The holder renews with its token; health lists the lease without its token.
        assert (await c.post("/__mock/lease?channel=a", headers=mine, json={"holder": "run-1"})).status_code == 200
        health = (await c.get("/__mock/health")).json()
        assert health["leases"]["a"]["holder"] == "run-1" and lease["token"] not in json.dumps(health)
        assert health["auth"] == "token"
        # A reset (here by the admin) is counted in the channel's generation, seen by the holder.
        assert (await c.post("/__mock/reset?channel=a", headers=admin)).json()["generation"] == 1
        log = (await c.get("/__mock/log?channel=a", headers=mine)).json()
        assert log["generation"] == 1 and log["reset_at"] and log["records"] == []
        assert (await c.post("/__mock/reset", headers=admin)).status_code == 200  # every channel
        assert (await c.get("/__mock/log?channel=a", headers=mine)).json()["generation"] == 2
        assert (await c.get("/__mock/health")).json()["generations"] == {"a": 2}
        # Release: only with its token (or the admin's); then the channel is free again.
        assert (await c.delete("/__mock/lease?channel=a", headers={"x-gwl-token": "nope-nope"})).status_code == 403
        assert (await c.delete("/__mock/lease?channel=a", headers=mine)).json()["released"] is True
        assert (await c.get("/__mock/log?channel=a", headers=mine)).status_code == 403
        assert (await c.post("/__mock/lease?channel=a", json={"holder": "run-2"})).status_code == 200


async def test_lease_lapses_after_its_ttl_and_open_mode_checks_no_token() -> None:
    async with MockServer("127.0.0.1", 0, require_token=False) as mock, httpx.AsyncClient(base_url=mock.url) as c:
        assert mock.token is None and mock.control_headers == {}
        assert (await c.post("/__mock/reset?channel=x")).status_code == 200
        assert (await c.get("/__mock/health")).json()["auth"] == "open"
        assert (await c.post("/__mock/lease?channel=x", json={"holder": "h1", "ttl_s": 0.2})).status_code == 200
        assert (await c.post("/__mock/lease?channel=x", json={"holder": "h2"})).status_code == 409  # still exclusive
        await asyncio.sleep(0.3)
        assert (await c.post("/__mock/lease?channel=x", json={"holder": "h2"})).status_code == 200
        for bad in ({"ttl_s": 0}, {"ttl_s": "5"}, {"holder": 3}, [1]):
            assert (await c.post("/__mock/lease?channel=y", json=bad)).status_code == 400, bad


def test_non_loopback_bind_needs_a_flag_and_warns() -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        MockServer("0.0.0.0", 0)
    r = subprocess.run([PY, "-m", "gatewaylens.mock", "--host", "0.0.0.0", "--port", "0"], env=ENV,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--allow-remote" in r.stderr
    proc = subprocess.Popen([PY, "-m", "gatewaylens.mock", "--host", "0.0.0.0", "--port", "0", "--allow-remote", "-q"],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines = []
        while not any("Ctrl-C" in ln for ln in lines):
            line = proc.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
    finally:
        proc.terminate()
        proc.wait(10)
    text = "".join(lines)
    assert "WARNING: listening on 0.0.0.0" in text
    assert "Control token: " in text  # the standalone mock prints its token


# --- capture: a reset by another client, a foreign record, a second capture --------------------


def _own_mock(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([PY, "-m", "gatewaylens.mock", "--port", str(port), "-q", "--token", TOKEN], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/__mock/health")
    return proc


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


@pytest.mark.parametrize("disturbance", ["reset", "foreign-record"])
def test_disturbed_channel_marks_the_exchange_and_exits_nonzero(tmp_path: Path, mock_port: int, gws: Gateways,
                                                               disturbance: str) -> None:
    mock = _own_mock(mock_port)
    try:
        specs = gws.start("gw")
        write_corpus(tmp_path, [case("before", text="[gwl:before] hi"),
                                case("victim", mode="slow", headers={"x-testgw-sleep": "1.0"}, text="[gwl:victim] hi"),
                                case("after", text="[gwl:after] hi")])
        proc = subprocess.Popen(capture_cmd(tmp_path, mock_port, specs, "--no-start-mock", "--out", "run"),
                                cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for(tmp_path / "slow-gw", proc)  # the victim exchange is in flight
        url = f"http://127.0.0.1:{mock_port}"
        # Without a token nobody can touch the leased channel...
        assert httpx.post(f"{url}/__mock/reset?channel=gw", trust_env=False).status_code == 401
        if disturbance == "reset":  # ...but the mock's owner can, and capture notices.
            r = httpx.post(f"{url}/__mock/reset?channel=gw", headers={"x-gwl-token": TOKEN}, trust_env=False)
            assert r.status_code == 200
        else:  # another client's traffic on the channel, carrying another case's marker
            assert httpx.post(f"{url}/ch/gw/v1/chat/completions", json=CHAT, trust_env=False).status_code == 200
        _, err = proc.communicate(timeout=60)
    finally:
        mock.terminate()
        mock.wait(10)
    assert proc.returncode == 1, err
    exs = {e["case_id"]: e for e in exchanges(tmp_path / "run")}
    assert exs["before"]["status"] == "ok" and exs["after"]["status"] == "ok", err
    victim = exs["victim"]
    assert victim["status"] == "error" and victim["error"]["kind"] == "disturbed", victim["error"]
    if disturbance == "reset":
        assert "reset by another client during this exchange" in victim["error"]["message"]
    else:
        assert "[gwl:other-case]" in victim["error"]["message"]
        # The foreign record is not attributed; the victim's own call is.
        assert [r["body_json"]["messages"][0]["content"] for r in victim["upstream_requests"]] == ["[gwl:victim] hi"]
    # analyze never reports it as a clean translation (nor as "no upstream call").
    r = subprocess.run([PY, "-m", "gatewaylens.analyze.cli", str(tmp_path / "run")], cwd=tmp_path, env=ENV,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    outcomes = {e["case_id"]: e["outcome"] for e in json.loads((tmp_path / "run" / "findings.json").read_text())["exchanges"]}
    assert outcomes["victim"] == "capture_error" and outcomes["before"] == "translated"


@pytest.mark.parametrize("mock_kind", ["own-process", "started-by-the-first-capture"])
def test_second_capture_on_the_same_mock_and_gateway_is_refused(tmp_path: Path, mock_port: int, gws: Gateways,
                                                                mock_kind: str) -> None:
    mock = _own_mock(mock_port) if mock_kind == "own-process" else None
    extra = ["--no-start-mock"] if mock is not None else []
    try:
        specs = gws.start("gw")
        write_corpus(tmp_path, [case("slow", mode="slow", headers={"x-testgw-sleep": "2.0"})])
        first = subprocess.Popen(capture_cmd(tmp_path, mock_port, specs, *extra, "--out", "run1"), cwd=tmp_path,
                                 env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for(tmp_path / "slow-gw", first)
        second = subprocess.run(capture_cmd(tmp_path, mock_port, specs, "--no-start-mock", "--out", "run2"),
                                cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=60)
        _, err1 = first.communicate(timeout=60)
    finally:
        if mock is not None:
            mock.terminate()
            mock.wait(10)
    assert second.returncode == 2, second.stderr
    line, = second.stderr.strip().splitlines()
    assert "refused" in line and "'gw'" in line and "in use by another client" in line and "Traceback" not in line
    assert not (tmp_path / "run2" / "exchanges.jsonl").exists()  # refused before any traffic
    assert first.returncode == 0, err1
    assert [e["status"] for e in exchanges(tmp_path / "run1")] == ["ok"]


# --- a fast, clean stop --------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stop_signal_with_a_request_in_flight_against_a_100s_delay(tmp_path: Path, mock_port: int, gws: Gateways,
                                                                   sig: signal.Signals, code: int) -> None:
    """Capture started the mock; the mock holds the request for 100 s.  Capture and its mock must be
    gone well before that (acceptance: 2 s; asserted against a generous 10 s so a loaded machine
    does not fail it), the completed exchange kept, the one in flight marked interrupted."""
    specs = gws.start("gw")
    write_corpus(tmp_path, [case("done-first"), case("held", script=[{"delay_ms": 100_000}])])
    proc = subprocess.Popen(capture_cmd(tmp_path, mock_port, specs, "--out", "run", "--timeout", "300"), cwd=tmp_path,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while True:  # until the mock (started by capture) holds the request
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        try:
            if httpx.get(f"http://127.0.0.1:{mock_port}/__mock/health", trust_env=False, timeout=1).json()["in_flight"]:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - t0
    print(f"\nstop after {sig.name} with a request in flight: {elapsed:.2f} s")
    assert elapsed < 10, (elapsed, err)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    with pytest.raises(httpx.ConnectError):  # the mock capture started is gone too
        httpx.get(f"http://127.0.0.1:{mock_port}/__mock/health", trust_env=False, timeout=1)
    exs: dict[str, dict[str, Any]] = {e["case_id"]: e for e in exchanges(tmp_path / "run")}
    assert exs["done-first"]["status"] == "ok" and exs["done-first"]["upstream_requests"]
    held = exs["held"]
    assert held["status"] == "error" and held["error"]["kind"] == "interrupted", held
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["interrupted"] is True
    # --resume captures the interrupted exchange again (here without the delay: it is the case's script
    # that holds it, so the rerun is interrupted too unless the script changes) and keeps the other.
    write_corpus(tmp_path, [case("done-first"), case("held")])
    res = subprocess.run(capture_cmd(tmp_path, mock_port, specs, "--out", "run", "--resume"), cwd=tmp_path, env=ENV,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "1 exchange(s) interrupted by the earlier stop will be captured again" in res.stderr
    final = exchanges(tmp_path / "run")
    assert [e["case_id"] for e in final] == ["done-first", "held"] and all(e["status"] == "ok" for e in final)
    assert final[0] == exs["done-first"]


def test_standalone_mock_stops_at_once_with_a_request_held_by_a_100s_delay(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    record = tmp_path / "records.jsonl"
    mock = subprocess.Popen([PY, "-m", "gatewaylens.mock", "--port", str(port), "-q", "--token", TOKEN,
                             "--record-file", str(record)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(f"{url}/__mock/health")
        r = httpx.post(f"{url}/__mock/script?channel=held", json={"delay_ms": 100_000},
                       headers={"x-gwl-token": TOKEN}, trust_env=False)
        assert r.status_code == 200, r.text
        client = subprocess.Popen([PY, "-c", "import httpx,sys; httpx.post(sys.argv[1], json={'model': 'm', "
                                   "'messages': []}, timeout=300, trust_env=False)",
                                   f"{url}/ch/held/v1/chat/completions"], env=ENV,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not httpx.get(f"{url}/__mock/health", trust_env=False).json()["in_flight"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        t0 = time.monotonic()
        mock.send_signal(signal.SIGINT)
        mock.wait(60)
        elapsed = time.monotonic() - t0
        print(f"\nstandalone mock stop with a request in flight: {elapsed:.2f} s")
        assert elapsed < 10 and mock.returncode == 0
        client.kill()
        client.wait()
    finally:
        if mock.poll() is None:
            mock.kill()
            mock.wait()
    # The held request is recorded all the same, marked cut.
    rec = json.loads(record.read_text().splitlines()[-1])
    assert rec["channel"] == "held" and rec["response"]["cut"] is True
