"""Bad analyze inputs (issue 12, input gaps): one line, exit 2, no traceback; repeated exchange
lines counted once; verdicts about cases or gateways the run lacks named and ignored."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from gatewaylens.analyze.pipeline import analyze_run
from tests.support.ground_truth import DATA_DIR


def _run(tmp_path: Path, lines: list[str]) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("run.json", "corpus.json"):
        shutil.copy(DATA_DIR / name, run / name)
    (run / "exchanges.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return run


def _lines(n: int) -> list[str]:
    return [line for line in (DATA_DIR / "portkey.jsonl").read_text(encoding="utf-8").split("\n") if line][:n]


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gatewaylens.analyze", *args], capture_output=True, text=True, timeout=120)


def test_exchanges_file_that_is_a_directory_is_one_line(tmp_path: Path) -> None:
    run = _run(tmp_path, [])
    (run / "exchanges.jsonl").unlink()
    (run / "exchanges.jsonl").mkdir()
    r = _analyze(str(run))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "exchanges.jsonl: is a directory" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_fixtures_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    run = _run(tmp_path, _lines(2))
    target = tmp_path / "a-file"
    target.write_text("x", encoding="utf-8")
    r = _analyze("fixtures", str(run), "--out", str(target))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "is a file" in r.stderr
    assert target.read_text(encoding="utf-8") == "x"


def test_a_repeated_exchange_line_is_counted_once(tmp_path: Path) -> None:
    lines = _lines(3)
    run = _run(tmp_path, [*lines, lines[0]])
    analyze_run(run)
    doc = json.loads((run / "findings.json").read_text(encoding="utf-8"))
    assert len(doc["exchanges"]) == 3
    assert any("appears again" in w for w in doc["analyzer"]["warnings"])


def test_verdicts_for_unknown_cases_and_gateways_are_named_and_ignored(tmp_path: Path) -> None:
    lines = _lines(2)
    ex = json.loads(lines[0])
    run = _run(tmp_path, lines)
    vdir = tmp_path / "verdicts"
    vdir.mkdir()
    issue = {"path": "model", "severity": "warn", "comment": "a comment", "finding": "new"}
    (vdir / "a.json").write_text(json.dumps({"case_id": "no-such-case", "gateways": [
        {"gateway": ex["gateway"], "verdict": "faithful", "summary": "fine", "issues": [issue]}]}), encoding="utf-8")
    (vdir / "b.json").write_text(json.dumps({"case_id": ex["case_id"], "gateways": [
        {"gateway": "no-such-gateway", "verdict": "faithful", "summary": "fine", "issues": [issue]}]}), encoding="utf-8")
    analyze_run(run, verdicts_dir=vdir)
    report = (run / "report.md").read_text(encoding="utf-8")
    assert "verdict for case 'no-such-case': no such case in this run, ignored" in report
    assert f"verdict for case '{ex['case_id']}': gateway(s) no-such-gateway not in this run, ignored" in report
