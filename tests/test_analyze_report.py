"""Run-level analysis: findings.json, report.md (escaping, sections), prompts, verdicts, baseline."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from gatewaylens.analyze.engine import BadInput
from gatewaylens.analyze.pipeline import analyze_run, load_findings_file
from gatewaylens.analyze.synthetic import (
    answer_body,
    client_body,
    make_exchange,
    synthetic_exchange,
    write_synthetic_run,
)
from gatewaylens.capture.models import ClientResponse, Exchange
from gatewaylens.mock.models import MockAnswer
from tests.support.report import pipe_exchange, write_run


def detail(run_dir: Path, gateway: str) -> str:
    """A gateway's detail file (report/<gateway>.md): per-case tables, streams, verdicts."""
    return (run_dir / "report" / f"{gateway}.md").read_text(encoding="utf-8")


def table_rows_are_well_formed(md: str) -> None:
    """Every table row has as many unescaped cell separators as its header."""
    width = None
    for line in md.splitlines():
        if not line.startswith("|"):
            width = None
            continue
        n = len(re.findall(r"(?<!\\)\|", line))
        if width is None:
            width = n
        assert n == width, line


def test_report_escapes_pipes_and_newlines_and_elides(tmp_path: Path) -> None:
    nasty = "a|b\nc" + "x" * 300
    run = write_run(tmp_path / "run", [pipe_exchange(nasty)], corpus=[{"id": "pipes", "note": "odd | values\nhere"}])
    res = analyze_run(run)
    table_rows_are_well_formed(res.report_path.read_text(encoding="utf-8"))
    md = detail(run, "gw-a")
    table_rows_are_well_formed(md)
    assert "a\\|b\\\\nc" in md  # pipe escaped; the newline shown as a JSON escape, never raw
    assert "(len " in md  # elided with its length
    assert "odd \\| values here" in md  # the case note, escaped
    ff = load_findings_file(res.findings_path)
    assert [(f.kind, f.path) for f in ff.findings] == [("dropped", "gwl_odd")]
    assert ff.findings[0].before == nasty


def test_synthetic_run_report_sections_and_scores(tmp_path: Path) -> None:
    run = write_synthetic_run(tmp_path / "run", 72)
    res = analyze_run(run)
    md = res.report_path.read_text(encoding="utf-8")
    for heading in ("## What each gateway does", "## Scoreboard", "## Cases × gateways", "## Field support matrix",
                    "### chat clients", "Response:", "Stream:"):
        assert heading in md
    assert md.index("## What each gateway does") < md.index("## Scoreboard")
    table_rows_are_well_formed(md)
    lossy = detail(run, "synth-lossy")
    assert "## Cases" in lossy and "Stream summary:" in lossy
    table_rows_are_well_formed(lossy)
    scores = {s.gateway: s.fidelity for s in res.scores}
    assert scores["synth-identity"] == 100.0
    assert scores["synth-translate"] == 100.0
    assert scores["synth-lossy"] is not None and scores["synth-lossy"] < 80
    assert "| `temperature` | kept | dropped | kept |" in md
    assert "renamed to stop_sequences" in md
    ff = load_findings_file(res.findings_path)
    assert len(ff.exchanges) == 72 and ff.analyzer.exchanges == 72
    assert not any(f.kind == "kept" for f in ff.findings)


def test_include_kept_adds_kept_entries(tmp_path: Path) -> None:
    run = write_synthetic_run(tmp_path / "run", 6)
    res = analyze_run(run, include_kept=True)
    ff = load_findings_file(res.findings_path)
    assert any(f.kind == "kept" for f in ff.findings)


def test_prompts_are_self_contained(tmp_path: Path) -> None:
    long_text = "gwl " * 400
    ex = pipe_exchange(long_text)
    run = write_run(tmp_path / "run", [ex], corpus=[{"id": "pipes", "note": "probes an odd field"}])
    res = analyze_run(run)
    prompt = (res.prompts_dir / "pipes.md").read_text(encoding="utf-8")
    assert "probes an odd field" in prompt
    assert "elided: 1600 chars total" in prompt
    assert "### gw-a → openai upstream" in prompt
    assert "dropped `gwl_odd`" in prompt
    assert '"verdict"' in prompt and '"faithful"' in prompt  # the verdict schema
    assert not (res.prompts_dir / ".parts").exists()


def test_truncated_last_line_is_skipped_with_a_warning(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [synthetic_exchange(i) for i in range(3)])
    with (run / "exchanges.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"id": "cut-off", "case_')
    res = analyze_run(run)
    assert res.exchanges == 3
    assert any("invalid last line skipped" in w for w in res.warnings)


def test_invalid_middle_line_is_bad_input_and_leaves_no_output(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [synthetic_exchange(i) for i in range(2)])
    lines = (run / "exchanges.jsonl").read_text().splitlines()
    lines.insert(1, json.dumps({"id": "x", "gateway": "g"}))
    (run / "exchanges.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(BadInput, match=r"exchanges.jsonl:2: field case_id"):
        analyze_run(run)
    assert not (run / "report.md").exists() and not (run / "findings.json").exists()
    assert not list(run.glob(".*tmp"))


def test_verdicts_merge_and_bad_files_are_named(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [pipe_exchange("gwl-odd-value")])
    vdir = tmp_path / "verdicts"
    vdir.mkdir()
    (vdir / "pipes.json").write_text(json.dumps({
        "case_id": "pipes", "reviewer": "model-x", "gateways": [{
            "gateway": "gw-a", "verdict": "lossy", "summary": "drops the gwl_odd field",
            "issues": [{"path": "gwl_odd", "severity": "warn", "comment": "silently dropped", "finding": "agree"}]}]}))
    (vdir / "bad.json").write_text(json.dumps({"case_id": "pipes", "gateways": [{"gateway": "gw-a", "verdict": "great"}]}))
    res = analyze_run(run, verdicts_dir=vdir)
    assert res.verdicts == 1
    assert len(res.verdict_errors) == 1 and "bad.json" in res.verdict_errors[0] and "gateways.0" in res.verdict_errors[0]
    md = res.report_path.read_text(encoding="utf-8")
    assert "bad.json" in md
    md = detail(run, "gw-a")
    assert "**lossy**" in md and "silently dropped" in md


def test_baseline_lists_appeared_and_disappeared(tmp_path: Path) -> None:
    old = write_run(tmp_path / "old", [pipe_exchange("gwl-odd-value"), pipe_exchange("gwl-odd-value", gateway="gw-b")])
    analyze_run(old)
    newer = pipe_exchange("gwl-odd-value")
    up = newer.upstream_requests[0]
    assert isinstance(up.body_json, dict)
    up.body_json.pop("top_p")
    fixed = pipe_exchange("gwl-odd-value", gateway="gw-b")
    assert isinstance(fixed.upstream_requests[0].body_json, dict)
    fixed.upstream_requests[0].body_json["gwl_odd"] = "gwl-odd-value"
    new = write_run(tmp_path / "new", [newer, fixed])
    res = analyze_run(new, baseline_dir=old)
    assert res.baseline is not None
    assert res.baseline["appeared"] == 1 and res.baseline["disappeared"] == 1
    md = res.report_path.read_text(encoding="utf-8")
    assert "## Changes since the baseline run" in md
    assert re.search(r"\| appeared \| openai \| request \| dropped \| `top_p` \|", md)
    assert re.search(r"\| disappeared \| openai \| request \| dropped \| `gwl_odd` \|", md)


def test_baseline_without_findings_json_is_analyzed(tmp_path: Path) -> None:
    old = write_run(tmp_path / "old", [pipe_exchange("gwl-odd-value")])
    new = write_run(tmp_path / "new", [pipe_exchange("gwl-odd-value")])
    res = analyze_run(new, baseline_dir=old)
    assert res.baseline is not None and res.baseline["appeared"] == 0 and res.baseline["disappeared"] == 0


def test_bad_run_json_names_the_field(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [])
    data = json.loads((run / "run.json").read_text())
    del data["corpus_sha256"]
    (run / "run.json").write_text(json.dumps(data))
    with pytest.raises(BadInput, match=r"run.json: field corpus_sha256: Field required"):
        analyze_run(run)


def test_memory_structures_do_not_grow_with_repeats(tmp_path: Path) -> None:
    """The aggregator's tables are keyed by case and gateway: 10x the exchanges, same sizes."""
    from gatewaylens.analyze.engine import analyze_exchange
    from gatewaylens.analyze.report import Aggregator

    sizes = []
    for n in (72, 720):
        agg = Aggregator()
        for i in range(n):
            agg.add(analyze_exchange(synthetic_exchange(i)))
        sizes.append((len(agg.cells), sum(len(t) for t in agg.tables.values()), len(agg.streams)))
    assert sizes[0] == sizes[1]


def test_unsupported_routes_fill_the_support_matrix(tmp_path: Path) -> None:
    ok = pipe_exchange("gwl-odd-value", gateway="gw-a")
    unsupported = Exchange(id="gw-b/pipes/openai", case_id="pipes", gateway="gw-b", dialect="chat", stream=False,
                           upstream="openai", status="unsupported", unsupported_reason="no chat route")
    res = analyze_run(write_run(tmp_path / "run", [unsupported, ok]))
    md = res.report_path.read_text(encoding="utf-8")
    assert "| `temperature` | kept | not supported |" in md


def test_capture_error_after_an_upstream_call_is_an_error_finding(tmp_path: Path) -> None:
    from gatewaylens.analyze.engine import analyze_exchange
    from gatewaylens.capture.models import ExchangeError

    ex = pipe_exchange("gwl-odd-value")
    ex.client_response = None
    ex.status = "error"
    ex.error = ExchangeError(kind="timeout", message="no answer within 60 s")
    r = analyze_exchange(ex)
    assert ("response", "dropped", "(response)", "error") in {(f.direction, f.kind, f.path, f.severity) for f in r.findings}
    assert r.summary.score is not None and r.summary.score < 100


def test_matrix_cell_is_split_by_upstream_only_when_the_kinds_differ(tmp_path: Path) -> None:
    def exchange(case_id: str, upstream: str, unsupported: bool) -> Exchange:
        body = client_body("chat", 1)
        if unsupported:
            return Exchange(id=f"gw-a/{case_id}/{upstream}", case_id=case_id, gateway="gw-a", dialect="chat",
                            stream=False, upstream=upstream, status="unsupported",  # type: ignore[arg-type]
                            unsupported_reason="no route")
        ex = make_exchange(gateway="gw-a", case_id=case_id, dialect="chat", upstream=upstream, body=body,
                           upstream_dialect="chat", upstream_body=copy.deepcopy(body),
                           answer=MockAnswer(status=200, body=answer_body("chat", "gwl text", (1234, 567))),
                           client_response=ClientResponse(status=200, body=answer_body("chat", "gwl text", (1234, 567))))
        return ex.model_copy(update={"id": f"gw-a/{case_id}/{upstream}"})

    run = write_run(tmp_path / "run", [exchange("mixed", "openai", False), exchange("mixed", "anthropic", True),
                                        exchange("same", "openai", False), exchange("same", "anthropic", False)])
    analyze_run(run)
    md = (run / "report.md").read_text()
    # one column per gateway and upstream kind: a case's two kinds are never averaged
    header = next(line for line in md.splitlines() if line.startswith("| case |"))
    assert header == "| case | gw-a → openai | gw-a → anthropic |"
    mixed = next(line for line in md.splitlines() if line.startswith("| mixed |"))
    same = next(line for line in md.splitlines() if line.startswith("| same |"))
    assert mixed == "| mixed | [100](report/gw-a.md#mixed) | [not supported](report/gw-a.md#mixed) |"
    assert same == "| same | [100](report/gw-a.md#same) | [100](report/gw-a.md#same) |"
    # the gateway's detail file heads the case with both kinds
    assert "openai: 100 · anthropic: not supported" in detail(run, "gw-a")


def test_large_run_report_is_short_and_never_cuts_a_cell(tmp_path: Path) -> None:
    """Many cases and exchanges: the main report stays a few hundred lines (detail goes to
    report/<gateway>.md) and no cell of it is elided."""
    run = write_synthetic_run(tmp_path / "run", 3000, cases=120)
    res = analyze_run(run)
    md = res.report_path.read_text(encoding="utf-8")
    lines = md.splitlines()
    assert len(lines) <= 400, len(lines)
    table_rows_are_well_formed(md)
    assert "…" not in md and "(len " not in md
    # every case is in the matrix, every gateway has its detail file, linked from the top
    assert sum(1 for line in lines if re.match(r"\| synth-\d{3}-", line)) == 120
    for g in ("synth-identity", "synth-translate", "synth-lossy"):
        assert f"[{g}](report/{g}.md)" in md
        assert (run / "report" / f"{g}.md").is_file()
    # the first screen lists the lossy gateway's errors before anything else
    first = md[: md.index("## Scoreboard")]
    assert "### synth-lossy — " in first and "| error | request | `temperature` | dropped |" in first


def test_support_matrix_covers_the_answer_side_and_parent_drops(tmp_path: Path) -> None:
    run = write_synthetic_run(tmp_path / "run", 72)
    md = analyze_run(run).report_path.read_text(encoding="utf-8")
    chat = md[md.index("### chat clients"): md.index("### messages clients")]
    # synth-translate drops stream_options whole (Anthropic has none): its child is not "kept"
    assert "| `stream_options.include_usage` | kept | kept | dropped with its parent stream_options |" in chat
    response = chat[chat.index("Response:"): chat.index("Stream:")]
    assert "| `system_fingerprint` | kept | dropped | added |" in response  # volatile: an info drop
    stream = chat[chat.index("Stream:"):]
    assert "| `usage` | kept | dropped (error) | kept |" in stream
