"""The bench on a tiny scale: its JSON file's schema, and figures that are measured, not constants."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from bench import mockbench
from bench.models import BenchFile, Figure, at_least, at_most, info

ROOT = Path(__file__).resolve().parents[1]


#: how a goal reads in the file: an operator and a number
_GOAL = re.compile(r"(<=|>=) -?[0-9.]+(e[+-]?[0-9]+)?")


def test_goal_verdicts_on_known_values() -> None:
    """``holds`` of the figure constructors on values whose verdict is known (edges included)."""
    assert at_most("x", 1.0, "s", 1.10).holds and at_most("x", 1.10, "s", 1.10).holds
    assert not at_most("x", 1.1001, "s", 1.10).holds
    assert at_least("x", 500.0, "req/s", 500).holds and not at_least("x", 499.99, "req/s", 500).holds
    assert at_most("x", 2.0, "s", 1.5).goal == "<= 1.5" and at_least("x", 1.0, "s", 2).goal == ">= 2"
    context = info("x", 3.0, "MiB")
    assert context.goal == "" and context.holds


def _well_formed(f: Figure) -> bool:
    return (f.goal == "" and f.holds) or bool(_GOAL.fullmatch(f.goal))


def test_bench_cli_writes_schema_valid_json(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    r = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "analyze", "--sizes", "20,60",
                        "--out", str(out)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-1000:]
    files = list(out.glob("*.json"))
    assert len(files) == 1 and files[0].stem.endswith("Z")
    raw = json.loads(files[0].read_text())
    assert set(raw) >= {"figures", "machine"}
    for f in raw["figures"]:
        assert set(f) >= {"name", "value", "unit", "goal", "holds"} and isinstance(f["holds"], bool)
    result = BenchFile.model_validate(raw)
    by_name = {f.name: f for f in result.figures}
    rates = [by_name[f"analyze {n} exchanges: throughput"].value for n in (20, 60)]
    assert all(x > 0 for x in rates) and rates[0] != rates[1]  # measured: two sizes never time identically
    assert "analyze peak memory 60 / 20 exchanges" in by_name
    assert all(_well_formed(f) for f in result.figures)
    assert result.machine.cpus >= 1
    assert "throughput" in r.stdout and str(files[0].name) in r.stdout


def test_mock_bench_measures_both_modes() -> None:
    res = mockbench.run(duration=0.3, rounds=1, concurrency=4, say=lambda _s: None)
    vals = {f.name: f for f in res.figures}
    on = vals["mock non-stream req/s, recording on"].value
    off = vals["mock non-stream req/s, recording off"].value
    assert on > 50 and off > 50 and res.rps_record_nonstream == on
    cost = vals["mock non-stream: recording cost (1 - on/off)"]
    assert abs(cost.value - (1 - on / off)) < 1e-3 and _well_formed(cost)  # the cost is of these two figures
    assert vals["mock stream req/s, recording on"].value > 20
