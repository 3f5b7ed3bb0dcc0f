"""What a newcomer sees in the terminal: capture's progress is one live display on a TTY and
plain lines otherwise; a skipped gateway reads "skipped: reason"; a one-upstream gateway's other
cases are "not run" once."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from gatewaylens.capture.launch import free_port
from tests.support.capture import Gateways, case, write_corpus

PY = sys.executable
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _cases(tmp_path: Path) -> int:
    cases = [case(f"c{i}") for i in range(12)] + [case("both", upstream=["openai", "anthropic"])]
    write_corpus(tmp_path, cases)
    return len(cases)


def _capture_args(tmp_path: Path, port: int, spec: str) -> list[str]:
    return [PY, "-m", "gatewaylens.capture", "--gateway", spec, "--corpus", str(tmp_path / "corpus.json"),
            "--mock", f"http://127.0.0.1:{port}", "--out", str(tmp_path / "run")]


def _run_in_pty(args: list[str], cwd: Path, timeout: float = 60) -> tuple[int, str]:
    """Run ``args`` with stdout and stderr on a pseudo-terminal; return (exit code, what it printed)."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm"}
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=cwd, env=env)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=10)
    os.close(leader)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_progress_is_one_live_display_on_a_tty(tmp_path: Path) -> None:
    n = _cases(tmp_path)
    port = free_port()
    g = Gateways(port)
    try:
        (spec,) = g.start("ttygw")
        code, out = _run_in_pty(_capture_args(tmp_path, port, spec), tmp_path)
    finally:
        g.stop()
    assert code == 0, out
    plain = ANSI.sub("", out)
    # no line per exchange ("[ttygw] 3/13 c2/openai ok 4ms"): a live bar redrawn in place instead
    assert not re.search(r"\[ttygw\] \d+/\d+ ", plain), plain
    assert f"{n}/{n}" in plain  # the bar's final count
    assert "\r" in out or "\x1b[" in out  # redrawn, not appended
    assert "ttygw: not run: 1 case run(s) for an anthropic upstream" in plain
    assert "capture summary" in plain and "captured" in plain and "capture failed" in plain


def test_plain_lines_when_not_a_tty(tmp_path: Path) -> None:
    n = _cases(tmp_path)
    port = free_port()
    g = Gateways(port)
    try:
        (spec,) = g.start("plaingw")
        r = subprocess.run([*_capture_args(tmp_path, port, spec), "--json"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=60, check=False)
    finally:
        g.stop()
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("[plaingw] ")]
    assert len(lines) == n and lines[-1].startswith(f"[plaingw] {n}/{n} ")
    assert "\x1b[" not in r.stderr
    summary = json.loads(r.stdout)
    (row,) = summary["gateways"]
    assert row["exchanges"] == n and row["unsupported"] == 0 and row["not_run"]
    # the report says it once too
    a = subprocess.run([PY, "-m", "gatewaylens.analyze", str(tmp_path / "run")], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60, check=False)
    assert a.returncode == 0, a.stderr
    report = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    assert report.count("plaingw not run: 1 case run(s) for an anthropic upstream") == 1
    assert "error findings" in a.stdout and "warn findings" in a.stdout


def test_skipped_gateway_reads_skipped_with_reason(tmp_path: Path) -> None:
    """A built-in that cannot run here (GoModel cannot be installed from the module proxy) is
    "skipped: reason" in the summary, not "not captured N"."""
    from gatewaylens.capture.gateways import LAUNCHERS, PROFILES

    reason = LAUNCHERS[PROFILES["gomodel"].launcher or ""]().available()
    if reason is None:  # a hand-built GoModel is present: nothing is skipped here
        return
    write_corpus(tmp_path, [case("c0")])
    r = subprocess.run([PY, "-m", "gatewaylens.capture", "--gateways", "gomodel", "--launch", "--corpus",
                        str(tmp_path / "corpus.json"), "--mock", f"http://127.0.0.1:{free_port()}", "--out",
                        str(tmp_path / "run")], capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)
    assert r.returncode == 1  # every selected gateway skipped
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("│ gomodel"))
    assert "skipped" in row and not re.search(r"\b1\b", row)  # no "not captured 1"
    assert r.stdout.count("gomodel: skipped: " + reason[:60]) == 1  # once, under the table, whole
