"""Fault suite: extra upstream calls, load across channels, secrets in many shapes, bad input.

Loopback only, bounded in count and time.  Complements tests/test_capture_run.py (dies
mid-stream, hangs, garbage, retries, mock restart, SIGINT/SIGTERM + resume, canaries), which is
not repeated here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewaylens.capture.corpus import InputError, load_corpus
from gatewaylens.capture.runner import CaptureOptions, run_capture
from gatewaylens.capture.selection import select
from tests.support.capture import case, free_port, wait_http

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
FAULTGW = ROOT / "tests" / "capture_testgw.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


MOCK_TOKEN = "fault-suite-control-token"


class Mock:
    """The real mock in its own process (control token :data:`MOCK_TOKEN`, sent as ``x-gwl-token``)."""

    def __init__(self, *args: str) -> None:
        self.headers = {"x-gwl-token": MOCK_TOKEN}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([PY, "-m", "gatewaylens.mock", "--port", str(self.port), "--quiet",
                                      "--token", MOCK_TOKEN, *args],
                                     env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_http(self.url + "/__mock/health")

    def stop(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=10)
        return err.decode(errors="replace")


class FaultGateway:
    def __init__(self, upstream: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([PY, str(FAULTGW), "--name", "fgw", "--forward-all", "--port", str(self.port),
                                      "--upstream", upstream],
                                     env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(self.url + "/health")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def mock_gw() -> Iterator[tuple[Mock, FaultGateway]]:
    mock = Mock()
    gw = FaultGateway(f"{mock.url}/ch/fgw")
    try:
        yield mock, gw
    finally:
        gw.stop()
        mock.stop()


def capture_cli(tmp: Path, mock: Mock, gateway: str, *extra: str, corpus: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [PY, "-m", "gatewaylens.capture", "--corpus", str(corpus or tmp / "corpus.json"), "--mock", mock.url,
           "--no-start-mock", "--gateway", gateway, *extra]
    return subprocess.run(cmd, cwd=tmp, env=ENV, capture_output=True, text=True, timeout=120)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


# --- a gateway that makes three upstream calls for one request ------------------------------


def test_three_upstream_calls_in_one_exchange_in_order(tmp_path: Path, mock_gw: tuple[Mock, FaultGateway]) -> None:
    mock, gw = mock_gw
    (tmp_path / "corpus.json").write_text(json.dumps({"cases": [
        case("triple", mode=None, headers={"x-testgw-mode": "triple"}),
        case("triple-stream", stream=True, headers={"x-testgw-mode": "triple"}),
        case("single", headers={"x-testgw-mode": "normal"}),
        case("triple-messages", dialect="messages", headers={"x-testgw-mode": "triple"}),
    ]}))
    res = capture_cli(tmp_path, mock, f"fgw={gw.url}", "--out", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    exs = {e["case_id"]: e for e in lines(tmp_path / "run" / "exchanges.jsonl")}
    assert set(exs) == {"triple", "triple-stream", "single", "triple-messages"}
    for cid in ("triple", "triple-stream", "triple-messages"):
        ups = exs[cid]["upstream_requests"]
        assert [u["body_json"]["model"].split("-", 1)[0] for u in ups] == ["call1", "call2", "call3"], cid
        seqs = [u["seq"] for u in ups]
        assert seqs == sorted(seqs) and len(set(seqs)) == 3
        assert exs[cid]["status"] == "ok"
    assert len(exs["single"]["upstream_requests"]) == 1
    # the stream relayed after the third call is whole
    frames = exs["triple-stream"]["client_response"]["frames"]
    assert frames and frames[-1]["data"].strip() == "[DONE]"


# --- load: 500 concurrent requests across 20 channels, mock memory bounded ------------------


def test_load_500_concurrent_20_channels_every_record_once_and_bounded(tmp_path: Path) -> None:
    bound = 10
    record_file = tmp_path / "records.jsonl"
    mock = Mock("--max-records", str(bound), "--record-file", str(record_file))
    try:
        async def one(client: httpx.AsyncClient, ch: int, i: int) -> tuple[str, int, str]:
            marker = f"load-{ch}-{i}"
            stream = i % 3 == 0
            body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": marker}]}
            if stream:
                body["stream"] = True
            r = await client.post(f"{mock.url}/ch/c{ch}/v1/chat/completions", json=body)
            if stream:
                assert r.text.rstrip().endswith("data: [DONE]"), marker
            return marker, r.status_code, f"c{ch}"

        async def main() -> list[tuple[str, int, str]]:
            limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
            async with httpx.AsyncClient(timeout=60, limits=limits, trust_env=False) as client:
                return await asyncio.gather(*(one(client, ch, i) for ch in range(20) for i in range(25)))

        results = asyncio.run(main())
        assert len(results) == 500 and all(status == 200 for _, status, _ in results)
        # Every request recorded exactly once, in its own channel (the record file keeps all).
        recs = lines(record_file)
        assert len(recs) == 500
        seen: dict[str, str] = {}
        for r in recs:
            marker = r["body_json"]["messages"][0]["content"]
            assert marker not in seen, f"{marker} recorded twice"
            seen[marker] = r["channel"]
            assert r["channel"] == f"c{marker.split('-')[1]}"
        assert set(seen) == {m for m, _, _ in results}
        assert sorted(r["seq"] for r in recs) == list(range(1, 501))
        # Memory bound: each channel keeps only its newest `bound` records, and they are the right ones.
        for ch in range(20):
            log = httpx.get(f"{mock.url}/__mock/log", params={"channel": f"c{ch}"}, headers=mock.headers,
                            trust_env=False).json()
            kept = [r["seq"] for r in log["records"]]
            newest = sorted(r["seq"] for r in recs if r["channel"] == f"c{ch}")[-bound:]
            assert kept == newest, ch
        health = httpx.get(f"{mock.url}/__mock/health", trust_env=False).json()
        assert health["last_seq"] == 500
        assert max(health["channels"].values()) == bound
    finally:
        mock.stop()


# --- secrets in many shapes: none reaches a file or the terminal ----------------------------

_tok = st.from_regex(r"[A-Za-z0-9_]{4,16}", fullmatch=True).map(lambda s: f"cnry{s}7Q")
_word = st.from_regex(r"[a-z]{1,8}", fullmatch=True)


@st.composite
def secret_shapes(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, str], str | None, list[str]]:
    """(headers, query, userinfo password, canaries to look for) with 1-4 secrets in varied shapes."""
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    userinfo: str | None = None
    canaries: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        tok, name = draw(_tok), draw(_word)
        shape = draw(st.sampled_from(["bearer", "x-key", "x-token", "x-api-key", "cookie", "basic", "query",
                                      "userinfo", "bearer-anywhere", "x-secret"]))
        if shape == "bearer":
            headers["authorization"] = f"Bearer sk-{tok}"
        elif shape == "x-key":
            headers[f"x-{name}-key"] = tok
        elif shape == "x-token":
            headers[f"x-{name}-token"] = tok
        elif shape == "x-api-key":
            headers["x-api-key"] = f"sk-ant-{tok}"
        elif shape == "x-secret":
            headers[f"x-{name}-secret"] = tok
        elif shape == "cookie":
            headers["cookie"] = f"{name}={tok}; theme=dark"
        elif shape == "basic":
            b64 = base64.b64encode(f"{name}:{tok}".encode()).decode()
            headers["authorization"] = f"Basic {b64}"
            canaries.append(b64)
        elif shape == "query":
            query[draw(st.sampled_from(["api_key", "key", "token", "access_token", "sig"]))] = tok
        elif shape == "userinfo":
            userinfo = tok
        else:  # a bearer-looking value under an innocent header name
            headers[f"x-{name}"] = f"Bearer sk-{tok}"
        canaries.append(tok)
    return headers, query, userinfo, canaries


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shapes=secret_shapes(), stream=st.booleans(), echo=st.booleans())
def test_secret_shapes_never_reach_files_or_terminal(mock_gw: tuple[Mock, FaultGateway], stream: bool, echo: bool,
                                                     shapes: tuple[dict[str, str], dict[str, str], str | None, list[str]]) -> None:
    mock, gw = mock_gw
    headers, query, userinfo, canaries = shapes
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        h = dict(headers)
        if echo:  # the gateway copies every client header and the query into its answer
            h["x-testgw-mode"] = "echo-all"
        (root / "corpus.json").write_text(json.dumps({"cases": [case("secret", stream=stream and not echo, headers=h)]}))
        url = gw.url if userinfo is None else gw.url.replace("http://", f"http://user:{userinfo}@")
        if query:
            url += "/?" + "&".join(f"{k}={v}" for k, v in query.items())
        sel = select(None, [f"fgw={url}"], [])
        opts = CaptureOptions(corpus=load_corpus(root / "corpus.json"), profiles=sel.profiles, custom=sel.custom,
                              mock_url=mock.url, start_mock=False, out=root / "run", timeout_s=20)
        term = io.StringIO()
        with contextlib.redirect_stderr(term):
            outcome = asyncio.run(run_capture(opts, stdout=term))
        assert outcome.exit_code == 0, term.getvalue()[-500:]
        ex = lines(root / "run" / "exchanges.jsonl")[0]
        assert ex["upstream_requests"], "the request must have reached the mock (else the test proves nothing)"
        texts = {p.name: p.read_text() for p in (root / "run").rglob("*") if p.is_file()}
        texts["terminal"] = term.getvalue()
        for name, text in texts.items():
            for c in canaries:
                assert c not in text, f"canary {c!r} leaked into {name}"


def test_secrets_absent_from_analyze_outputs_and_fixtures(tmp_path: Path, mock_gw: tuple[Mock, FaultGateway]) -> None:
    """One capture with every shape at once, then ``analyze`` and ``analyze fixtures`` on it."""
    mock, gw = mock_gw
    b64 = base64.b64encode(b"alice:cnryBasicPw42").decode()
    canaries = ["cnryBearer0001", "cnryXKey0002", "cnryCookie0003", "cnryQuery0004", "cnryUser0005", b64,
                "cnryXTok0006"]
    auth_cases = [
        case("bearer", headers={"authorization": f"Bearer sk-{canaries[0]}", "x-acme-key": canaries[1]}),
        case("cookie-echo", headers={"cookie": f"sid={canaries[2]}", "x-testgw-mode": "echo-all"}),
        case("basic-stream", stream=True, headers={"authorization": f"Basic {b64}", "x-acme-token": canaries[6]}),
        case("messages-echo", dialect="messages", headers={"x-api-key": f"sk-ant-{canaries[1]}",
                                                           "x-testgw-mode": "echo-all"}),
    ]
    (tmp_path / "corpus.json").write_text(json.dumps({"cases": auth_cases}))
    url = gw.url.replace("http://", f"http://u:{canaries[4]}@") + f"/?api_key={canaries[3]}"
    run_dir = tmp_path / "run"
    outputs = [capture_cli(tmp_path, mock, f"fgw={url}", "--out", str(run_dir))]
    assert outputs[0].returncode == 0, outputs[0].stderr
    for cmd in ([str(run_dir)], ["fixtures", str(run_dir), "--out", str(tmp_path / "fixtures")]):
        r = subprocess.run([PY, "-m", "gatewaylens.analyze.cli", *cmd], cwd=tmp_path, env=ENV, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        outputs.append(r)
    names = {p.name for p in run_dir.rglob("*")}
    assert {"findings.json", "report.md", "exchanges.jsonl"} <= names and any(p.suffix == ".md" for p in (run_dir / "prompts").iterdir())
    assert any((tmp_path / "fixtures").rglob("*.*"))
    files = [p for d in (run_dir, tmp_path / "fixtures") for p in d.rglob("*") if p.is_file()]
    for p in files:
        text = p.read_bytes().decode("utf-8", errors="replace")
        for c in canaries:
            assert c not in text, f"{c} leaked into {p.relative_to(tmp_path)}"
    for r in outputs:
        for c in canaries:
            assert c not in r.stdout and c not in r.stderr


# --- bad input: one line naming the file (and field), exit 2, no traceback, nothing lost -----

_VALID_CASE: dict[str, Any] = case("fuzz", headers={"x-testgw-mode": "normal"})
_FIELDS = ["id", "dialect", "stream", "body", "note", "upstream", "headers", "script", "tags", "body.model",
           "body.messages", "body.stream", "(top)", "cases"]
_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30), st.floats(allow_nan=False),
    st.text(max_size=40), st.just("x" * 20_000), st.just(["x"] * 50), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.lists(st.integers(), max_size=3), st.just("Ünïcødé ☃ \u0000"),
)


def _mutated_corpus(field: str, value: Any, raw_op: str, pos: int) -> bytes:
    c = json.loads(json.dumps(_VALID_CASE))
    doc: Any = {"cases": [c]}
    if field == "(top)":
        doc = value
    elif field == "cases":
        doc["cases"] = value
    elif field.startswith("body."):
        c["body"][field[5:]] = value
    else:
        c[field] = value
    raw = json.dumps(doc).encode()
    pos = pos % (len(raw) + 1)
    if raw_op == "truncate":
        raw = raw[:pos]
    elif raw_op == "invalid-utf8":
        raw = raw[:pos] + b"\xff\xfe" + raw[pos:]
    elif raw_op == "huge-number":
        raw = raw.replace(b'"fuzz"', b'"fuzz", "extra": ' + b"9" * 5000, 1)
    return raw


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(_FIELDS), value=_values, raw_op=st.sampled_from(["none", "none", "truncate", "invalid-utf8", "huge-number"]),
       pos=st.integers(0, 10_000))
def test_corpus_fuzz_is_one_line_input_error(field: str, value: Any, raw_op: str, pos: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed-corpus.json"
        path.write_bytes(_mutated_corpus(field, value, raw_op, pos))
        try:
            loaded = load_corpus(path)
        except InputError as e:
            msg = str(e)
            assert "\n" not in msg and msg.startswith(str(path)), msg
            assert len(msg) <= 700
            return
        # A mutation that is still a valid corpus must round-trip to a case that can be sent as JSON.
        for c in loaded.corpus.cases:
            json.dumps(c.body, allow_nan=False)


BAD_FILES: dict[str, bytes] = {
    "invalid-utf8": b'{"cases": [{"id": "a\xff", "dialect": "chat"}]}',
    "malformed": b'{"cases": [{"id": "a", ',
    "wrong-type": json.dumps({"cases": [{**_VALID_CASE, "stream": "yes"}]}).encode(),
    "unknown-dialect": json.dumps({"cases": [{**_VALID_CASE, "dialect": "smoke-signals"}]}).encode(),
    "huge-number": json.dumps({"cases": [_VALID_CASE]}).replace('"fuzz"', '"fuzz", "x": ' + "9" * 5000, 1).encode(),
    "not-finite": json.dumps({"cases": [_VALID_CASE]}).replace('"fuzz"', '"fuzz", "x": 1e999', 1).encode(),
}


def _assert_one_line_exit2(r: subprocess.CompletedProcess[str], path: Path, field: str | None = None) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-400:])
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert str(path) in err or path.name in err, err
    if field:
        assert field in err, err


def test_bad_corpus_with_resume_loses_nothing(tmp_path: Path, mock_gw: tuple[Mock, FaultGateway]) -> None:
    mock, gw = mock_gw
    (tmp_path / "corpus.json").write_text(json.dumps({"cases": [case("a"), case("b", stream=True)]}))
    run_dir = tmp_path / "run"
    r = capture_cli(tmp_path, mock, f"fgw={gw.url}", "--out", str(run_dir))
    assert r.returncode == 0, r.stderr
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    assert len(before["exchanges.jsonl"].splitlines()) == 2
    for name, raw in BAD_FILES.items():
        bad = tmp_path / f"bad-{name}.json"
        bad.write_bytes(raw)
        r = capture_cli(tmp_path, mock, f"fgw={gw.url}", "--out", str(run_dir), "--resume", corpus=bad)
        _assert_one_line_exit2(r, bad, {"wrong-type": "stream", "unknown-dialect": "dialect"}.get(name))
        assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before, name


def test_bad_gateways_file_one_line_exit2(tmp_path: Path) -> None:
    (tmp_path / "corpus.json").write_text(json.dumps({"cases": [case("a")]}))
    variants = {
        "malformed": b'{"gateways": [',
        "invalid-utf8": b'{"gateways": [{"name": "g\xff"}]}',
        "wrong-type": json.dumps({"gateways": [{"name": "g", "base_url": "http://127.0.0.1:1", "routes": "all"}]}).encode(),
        "huge": json.dumps({"gateways": [{"name": "g" * 100_000, "base_url": "http://127.0.0.1:1", "routes": []}]}).encode(),
        "not-a-list": b'{"gateways": 7}',
    }
    for name, raw in variants.items():
        f = tmp_path / f"gw-{name}.json"
        f.write_bytes(raw)
        r = subprocess.run([PY, "-m", "gatewaylens.capture", "--corpus", str(tmp_path / "corpus.json"), "--gateways-file",
                            str(f), "--no-start-mock", "--mock", "http://127.0.0.1:9"], cwd=tmp_path, env=ENV,
                           capture_output=True, text=True, timeout=60)
        _assert_one_line_exit2(r, f, {"wrong-type": "routes"}.get(name))
        assert len(r.stderr) < 1000, name  # a huge value is not echoed back whole


def test_bad_verdicts_and_fixtures(tmp_path: Path, mock_gw: tuple[Mock, FaultGateway]) -> None:
    """Verdicts: each bad file named in one line and skipped, the rest merge.  Fixtures: exit 2."""
    mock, gw = mock_gw
    (tmp_path / "corpus.json").write_text(json.dumps({"cases": [case("a"), case("b", dialect="messages")]}))
    run_dir = tmp_path / "run"
    assert capture_cli(tmp_path, mock, f"fgw={gw.url}", "--out", str(run_dir)).returncode == 0
    exchanges_before = (run_dir / "exchanges.jsonl").read_bytes()

    def analyze(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PY, "-m", "gatewaylens.analyze.cli", *args], cwd=tmp_path, env=ENV,
                              capture_output=True, text=True, timeout=120)

    vdir = tmp_path / "verdicts"
    vdir.mkdir()
    bad_verdicts = {"malformed.json": b'{"case_id": "a", ', "utf8.json": b'{"case_id": "\xff"}',
                    "types.json": json.dumps({"case_id": 7, "verdicts": "nope"}).encode(),
                    "huge.json": json.dumps({"case_id": "a" * 200_000}).encode()}
    for n, raw in bad_verdicts.items():
        (vdir / n).write_bytes(raw)
    r = analyze(str(run_dir), "--verdicts", str(vdir))
    assert "Traceback" not in r.stderr, r.stderr[-800:]
    assert r.returncode == 0, r.stderr
    skipped = [ln for ln in r.stderr.splitlines() if "verdict skipped" in ln]
    assert len(skipped) == len(bad_verdicts), r.stderr
    for n in bad_verdicts:
        assert sum(n in ln for ln in skipped) == 1, (n, r.stderr)
    assert all(len(ln) < 1500 for ln in skipped)

    fx = tmp_path / "fixtures"
    r = analyze("fixtures", str(run_dir), "--out", str(fx))
    assert r.returncode == 0, r.stderr
    files = sorted(p for p in fx.rglob("*") if p.is_file())
    assert files
    originals = {p: p.read_bytes() for p in files}
    corruptions = [b'{"gateway": ', b"\xff\xfe garbage", json.dumps({"gateway": 5, "entries": "x"}).encode(),
                   json.dumps([1, 2, 3]).encode()]
    for raw in corruptions:
        target = files[0]
        target.write_bytes(raw)
        r = analyze("check", str(run_dir), "--fixtures", str(fx))
        assert "Traceback" not in r.stderr, r.stderr[-800:]
        assert r.returncode == 2, (raw, r.returncode, r.stdout[-300:], r.stderr[-300:])
        assert len(r.stderr.strip().splitlines()) == 1 and target.name in r.stderr, r.stderr
        target.write_bytes(originals[target])
    assert analyze("check", str(run_dir), "--fixtures", str(fx)).returncode == 0
    assert (run_dir / "exchanges.jsonl").read_bytes() == exchanges_before
