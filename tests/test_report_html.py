"""report.html: one self-contained page built from the same analysis as report.md."""

from __future__ import annotations

import re
from pathlib import Path

from gatewaylens.analyze.pipeline import analyze_run
from gatewaylens.analyze.synthetic import write_synthetic_run
from tests.support.report import page_data, pipe_exchange, write_run


def test_report_html_is_self_contained(tmp_path: Path) -> None:
    run = write_synthetic_run(tmp_path / "run", 72)
    analyze_run(run)
    html = (run / "report.html").read_text(encoding="utf-8")
    # no external resource of any kind: every script and style is inline
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "@import" not in html and "url(" not in html
    assert not re.search(r"<script[^>]+src=", html) and not re.search(r"<link[^>]+stylesheet", html)
    assert "[report.html](report.html)" in (run / "report.md").read_text(encoding="utf-8")
    data = page_data(html)
    rows = data["rows"]
    assert isinstance(rows, list) and len(rows) == 72  # one row per (gateway, case, upstream, variant)
    lossy = [r for r in rows if r["g"] == "synth-lossy" and r["d"] == "chat" and not r["s"]]
    assert lossy and all(r["w"] == "error" for r in lossy)
    f = next(f for f in lossy[0]["f"] if f[2] == "temperature")
    assert f[:2] == ["request", "dropped"] and f[4] == "error"
    # the four bodies of the first exchange are there for the side-by-side view
    x = lossy[0]["x"]
    assert x["cq"]["temperature"] == 0.37 and "temperature" not in x["uq"]
    assert x["ur"]["object"] == "chat.completion" and x["cr"]["object"] == "chat.completion"
    stream = next(r for r in rows if r["g"] == "synth-lossy" and r["s"])
    assert stream["x"]["tu"] and stream["x"]["tc"]  # both stream timelines, with relative times
    assert all(isinstance(fr[0], float) for fr in stream["x"]["tu"])
    behaviours = data["behaviours"]
    assert isinstance(behaviours, list) and any(b["path"] == "temperature" and b["sev"] == "error" for b in behaviours)


def test_report_html_data_cannot_close_its_script(tmp_path: Path) -> None:
    evil = "</script><script>alert(1)</script><!--"
    run = write_run(tmp_path / "run", [pipe_exchange(evil)])
    analyze_run(run)
    html = (run / "report.html").read_text(encoding="utf-8")
    assert evil not in html and "alert(1)" in html  # present, but only as escaped JSON
    data = page_data(html)
    rows = data["rows"]
    assert isinstance(rows, list)
    assert rows[0]["x"]["cq"]["gwl_odd"] == evil
