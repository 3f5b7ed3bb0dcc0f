"""`analyze` over a pool of worker processes: the same outputs as in-process, in the same order,
and the same handling of bad lines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gatewaylens.analyze import pipeline
from gatewaylens.analyze.engine import BadInput
from gatewaylens.analyze.pipeline import analysis_workers, analyze_run
from gatewaylens.analyze.synthetic import write_synthetic_run


def outputs(run: Path) -> dict[str, str]:
    files = {"findings.json": (run / "findings.json").read_text(), "report.md": (run / "report.md").read_text()}
    files.update({f"prompts/{p.name}": p.read_text() for p in sorted((run / "prompts").glob("*.md"))})
    return files


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many chunks and a full in-flight window even for a small run.
    monkeypatch.setattr(pipeline, "CHUNK", 7)


def test_parallel_outputs_equal_in_process_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   small_chunks: None) -> None:
    serial = write_synthetic_run(tmp_path / "serial", 240)
    parallel = tmp_path / "parallel"
    shutil.copytree(serial, parallel)
    monkeypatch.setenv("GATEWAYLENS_ANALYZE_WORKERS", "1")
    a = analyze_run(serial, include_kept=True)
    monkeypatch.setenv("GATEWAYLENS_ANALYZE_WORKERS", "2")
    b = analyze_run(parallel, include_kept=True)
    assert (a.exchanges, a.findings) == (b.exchanges, b.findings) == (240, a.findings)
    assert a.findings > 240
    out_a, out_b = outputs(serial), outputs(parallel)
    assert out_a.keys() == out_b.keys()
    for name in out_a:
        assert out_a[name].replace(str(serial), "RUN") == out_b[name].replace(str(parallel), "RUN"), name
    ids = [e["id"] for e in json.loads(out_b["findings.json"])["exchanges"]]
    lines = (parallel / "exchanges.jsonl").read_text().splitlines()
    assert ids == [json.loads(line)["id"] for line in lines]  # file order kept


def test_parallel_bad_line_is_bad_input_naming_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        small_chunks: None) -> None:
    run = write_synthetic_run(tmp_path / "run", 60)
    lines = (run / "exchanges.jsonl").read_text().splitlines()
    lines[30] = '{"id": "broken"}'
    (run / "exchanges.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("GATEWAYLENS_ANALYZE_WORKERS", "2")
    with pytest.raises(BadInput, match=r"exchanges\.jsonl:31: "):
        analyze_run(run)
    assert not (run / "findings.json").exists()


def test_parallel_skips_a_truncated_last_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              small_chunks: None) -> None:
    run = write_synthetic_run(tmp_path / "run", 30)
    text = (run / "exchanges.jsonl").read_text()
    (run / "exchanges.jsonl").write_text(text + text.splitlines()[0][:200] + "\n")
    monkeypatch.setenv("GATEWAYLENS_ANALYZE_WORKERS", "2")
    result = analyze_run(run)
    assert result.exchanges == 30
    assert any("31: invalid last line skipped" in w for w in result.warnings)


def test_worker_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = write_synthetic_run(tmp_path / "run", 5) / "exchanges.jsonl"
    monkeypatch.delenv("GATEWAYLENS_ANALYZE_WORKERS", raising=False)
    assert analysis_workers(small) == 1  # below the size where a pool pays off
    monkeypatch.setenv("GATEWAYLENS_ANALYZE_WORKERS", "3")
    assert analysis_workers(small) == 3
    monkeypatch.setenv("GATEWAYLENS_ANALYZE_WORKERS", "x")
    with pytest.raises(BadInput, match="GATEWAYLENS_ANALYZE_WORKERS"):
        analysis_workers(small)
