"""The `analyze` command line: default RUN_DIR and subcommands, exit codes, fixtures and check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gatewaylens.analyze.cli import main
from gatewaylens.analyze.fixtures import dump_fixture
from gatewaylens.analyze.models import Fixture
from gatewaylens.analyze.synthetic import write_synthetic_run
from gatewaylens.capture.models import Exchange


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_synthetic_run(tmp_path / "run", 36)


def rewrite(src: Path, dst: Path, edit: object) -> Path:
    """Copy a run, passing every exchange through ``edit(index, exchange)``."""
    dst.mkdir(parents=True)
    (dst / "run.json").write_text((src / "run.json").read_text())
    lines = []
    for i, line in enumerate((src / "exchanges.jsonl").read_text().splitlines()):
        ex = Exchange.model_validate_json(line)
        edit(i, ex)  # type: ignore[operator]
        lines.append(ex.model_dump_json())
    (dst / "exchanges.jsonl").write_text("\n".join(lines) + "\n")
    return dst


def test_analyze_run_dir_prints_the_report_path(run_dir: Path) -> None:
    res = run_cli(str(run_dir))
    assert res.exit_code == 0, res.output
    assert f"report:   {run_dir / 'report.md'}" in res.output.replace("\n", "\n")
    assert "synth-lossy" in res.output
    assert (run_dir / "report.md").exists() and (run_dir / "findings.json").exists()


def test_analyze_json_summary(run_dir: Path) -> None:
    res = run_cli(str(run_dir), "--json")
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert data["exchanges"] == 36
    assert {g["gateway"] for g in data["gateways"]} == {"synth-identity", "synth-translate", "synth-lossy"}


def test_analyze_defaults_to_output_latest(run_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "output").mkdir(parents=True)
    os.symlink(run_dir, work / "output" / "latest")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        res = run_cli("--include-kept")
    finally:
        os.chdir(cwd)
    assert res.exit_code == 0, res.output
    assert (run_dir / "report.md").exists()


def test_schema_is_printed() -> None:
    res = run_cli("--schema")
    assert res.exit_code == 0
    schema = json.loads(res.stdout)
    finding = schema["$defs"]["Finding"]["properties"]
    for field in ("gateway", "case_id", "dialect", "stream", "upstream", "direction", "kind", "path", "to_path",
                  "before", "after", "severity", "message"):
        assert field in finding
    from gatewaylens.analyze.models import KIND_HELP, KINDS

    assert set(finding["kind"]["enum"]) == set(KINDS) == set(KIND_HELP)
    for kind in ("converted", "reordered", "malformed", "duplicated_call", "model_substituted"):
        assert kind in finding["kind"]["enum"]
    assert "Behaviour" in schema["$defs"] and "behaviours" in schema["properties"]


@pytest.mark.parametrize(("args_builder", "needle"), [
    (lambda d: [str(d / "missing")], "run directory not found"),
    (lambda d: [str(d), "--verdicts", str(d / "nope")], "verdicts directory not found"),
    (lambda d: [str(d), "--baseline", str(d / "nope")], "baseline run directory not found"),
    (lambda d: ["check", str(d), "--fixtures", str(d / "nope")], "fixtures directory not found"),
])
def test_bad_input_exits_2_with_one_line(run_dir: Path, args_builder: object, needle: str) -> None:
    res = run_cli(*args_builder(run_dir))  # type: ignore[operator]
    assert res.exit_code == 2
    assert needle in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.output


def test_bad_run_json_exits_2_naming_file_and_field(run_dir: Path) -> None:
    data = json.loads((run_dir / "run.json").read_text())
    data["started"] = "yesterday"
    (run_dir / "run.json").write_text(json.dumps(data))
    res = run_cli(str(run_dir))
    assert res.exit_code == 2
    assert "run.json: field started:" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_fixtures_round_trip_and_check_unchanged(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fixtures"
    res = run_cli("fixtures", str(run_dir), "--out", str(out))
    assert res.exit_code == 0, res.output
    files = sorted(out.rglob("*.json"))
    assert len(files) == 36
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert dump_fixture(Fixture.model_validate_json(text)) == text  # stable, diff-friendly round trip
    first = {f: f.read_text() for f in files}
    assert run_cli("fixtures", str(run_dir), "--out", str(out)).exit_code == 0
    assert {f: f.read_text() for f in files} == first  # deterministic
    assert "<volatile>" in first[out / "synth-translate" / "synth-000-chat.anthropic.json"]  # ids masked
    identity = json.loads(first[out / "synth-identity" / "synth-000-chat.openai.json"])
    assert identity["fixture_version"] == 2 and identity["behaviours"] == []  # unchanged leaves are no behaviours
    lossy = json.loads(first[out / "synth-lossy" / "synth-000-chat.openai.json"])
    keys = [(b["direction"], b["path"], b["kind"]) for b in lossy["behaviours"]]
    assert keys == sorted(keys) and ("request", "temperature", "dropped") in keys

    # A new capture with new ids and timestamps but the same translation passes.
    def new_ids(_i: int, ex: Exchange) -> None:
        for rec in ex.upstream_requests[:1]:
            bodies = [rec.response.body, ex.client_response.body if ex.client_response else None]
            for body in bodies:
                if isinstance(body, dict) and "id" in body:
                    body["id"] += "-new"
                    for key in ("created", "created_at"):
                        if key in body:
                            body[key] = 1799999999

    again = rewrite(run_dir, tmp_path / "again", new_ids)
    res = run_cli("check", str(again), "--fixtures", str(out))
    assert res.exit_code == 0, res.output
    assert "ok: 36 exchange(s) match their fixtures" in res.output


def test_check_detects_an_injected_regression(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fixtures"
    assert run_cli("fixtures", str(run_dir), "--out", str(out)).exit_code == 0

    def drop_top_p(_i: int, ex: Exchange) -> None:
        if ex.gateway == "synth-identity" and ex.case_id == "synth-000-chat":
            body = ex.upstream_requests[0].body_json
            assert isinstance(body, dict)
            body.pop("top_p")
        if ex.gateway == "synth-identity" and ex.case_id == "synth-003-chat-stream":
            frames = ex.client_response.frames if ex.client_response else None
            assert frames is not None
            frames[:] = [f for f in frames if not (isinstance(f.json_data, dict) and f.json_data.get("usage"))]

    broken = rewrite(run_dir, tmp_path / "broken", drop_top_p)
    res = run_cli("check", str(broken), "--fixtures", str(out))
    assert res.exit_code == 1
    lines = [line for line in res.stdout.splitlines() if line.startswith(("REGRESSION", "CHANGED", "IMPROVED"))]
    assert any(line.startswith("REGRESSION synth-identity/synth-000-chat[openai]: request top_p dropped: new (")
               for line in lines), lines
    assert any(line.startswith("REGRESSION synth-identity/synth-003-chat-stream[openai]: stream usage dropped: new (")
               for line in lines), lines
    assert all(line.startswith("REGRESSION synth-identity/synth-00") for line in lines), lines


def test_check_reports_improvement_and_severity_change(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fixtures"
    assert run_cli("fixtures", str(run_dir), "--out", str(out)).exit_code == 0
    victim = out / "synth-lossy" / "synth-000-chat.openai.json"
    data = json.loads(victim.read_text())
    temp = next(b for b in data["behaviours"] if b["path"] == "temperature")
    temp["severity"] = "info"  # the fixture said milder: today's error is a worse severity
    data["behaviours"].append({**temp, "path": "top_k", "severity": "warn",
                               "example": {**temp["example"], "path": "top_k"}})  # a warn that went away
    victim.write_text(json.dumps(data))
    res = run_cli("check", str(run_dir), "--fixtures", str(out))
    assert res.exit_code == 1
    lines = res.stdout.splitlines()
    assert "REGRESSION synth-lossy/synth-000-chat[openai]: request temperature dropped: severity info -> error" in lines
    assert "IMPROVED synth-lossy/synth-000-chat[openai]: request top_k dropped (warn): gone" in lines
    assert len([line for line in lines if line.startswith(("REGRESSION", "CHANGED", "IMPROVED"))]) == 2


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda d: d.update(fixture_version=1), "fixture_version 1; this gatewaylens reads fixture_version 2"),
    (lambda d: d.pop("fixture_version"), "no fixture_version (not a gatewaylens fixture)"),
])
def test_check_old_or_foreign_fixture_exits_2_naming_versions(run_dir: Path, tmp_path: Path, edit: object,
                                                            needle: str) -> None:
    out = tmp_path / "fixtures"
    assert run_cli("fixtures", str(run_dir), "--out", str(out)).exit_code == 0
    victim = sorted(out.rglob("*.json"))[3]
    data = json.loads(victim.read_text())
    edit(data)  # type: ignore[operator]
    victim.write_text(json.dumps(data))
    res = run_cli("check", str(run_dir), "--fixtures", str(out))
    assert res.exit_code == 2
    assert str(victim) in res.stderr and needle in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_check_bad_fixture_exits_2(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fixtures"
    assert run_cli("fixtures", str(run_dir), "--out", str(out)).exit_code == 0
    victim = out / "synth-lossy" / "synth-000-chat.openai.json"
    data = json.loads(victim.read_text())
    data["behaviours"][0]["kind"] = "vanished"
    victim.write_text(json.dumps(data))
    res = run_cli("check", str(run_dir), "--fixtures", str(out))
    assert res.exit_code == 2
    assert victim.name in res.stderr and "behaviours.0.kind" in res.stderr


def test_check_reports_a_missing_exchange(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fixtures"
    assert run_cli("fixtures", str(run_dir), "--out", str(out)).exit_code == 0
    lines = (run_dir / "exchanges.jsonl").read_text().splitlines()
    (run_dir / "exchanges.jsonl").write_text("\n".join(lines[1:]) + "\n")
    res = run_cli("check", str(run_dir), "--fixtures", str(out))
    assert res.exit_code == 1
    assert "exchange missing from the run" in res.stdout


def test_unknown_option_is_a_usage_error_in_the_group_voice(run_dir: Path) -> None:
    res = CliRunner().invoke(main, [str(run_dir), "--bogus"], prog_name="analyze")
    assert res.exit_code == 2
    assert "Usage: analyze [OPTIONS] [RUN_DIR]" in res.output and "No such option" in res.output


# --- CI outputs: JUnit, Markdown summary, JSON, known gaps ------------------------------------


def _drop_top_p(_i: int, ex: Exchange) -> None:
    if ex.gateway == "synth-identity" and ex.case_id == "synth-000-chat":
        body = ex.upstream_requests[0].body_json
        assert isinstance(body, dict)
        body.pop("top_p")


def test_check_junit_summary_and_json(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import xml.etree.ElementTree as ET

    out = tmp_path / "fixtures"
    assert run_cli("fixtures", str(run_dir), "--out", str(out)).exit_code == 0
    broken = rewrite(run_dir, tmp_path / "broken", _drop_top_p)
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    res = run_cli("check", str(broken), "--fixtures", str(out), "--junit", str(tmp_path / "j.xml"),
                  "--summary", str(tmp_path / "s.md"), "--json")
    assert res.exit_code == 1
    data = json.loads(res.stdout)
    assert data["ok"] is False and data["compared"] == 36 and len(data["testcases"]) == 36
    assert data["regressions"] and all(r.startswith("synth-identity/synth-000-chat[openai]: ") for r in data["regressions"])

    # JUnit: the common schema (testsuites > testsuite > testcase [> failure]) with consistent counts.
    root = ET.parse(tmp_path / "j.xml").getroot()
    assert root.tag == "testsuites"
    suites = list(root)
    assert [s.tag for s in suites] == ["testsuite"]
    suite = suites[0]
    cases = suite.findall("testcase")
    assert len(cases) == 36 == int(suite.get("tests", "-1")) == int(root.get("tests", "-1"))
    assert all(c.get("name") and c.get("classname") for c in cases)
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["synth-identity/synth-000-chat[openai]"]
    assert int(suite.get("failures", "-1")) == 1 and suite.get("errors") == "0"
    failure = failed[0].find("failure")
    assert failure is not None and failure.get("message") and "request top_p dropped: new" in (failure.text or "")
    for c in cases:
        assert set(c.attrib) <= {"name", "classname", "time"}
        assert {child.tag for child in c} <= {"failure", "system-out"}

    summary = (tmp_path / "s.md").read_text()
    assert summary.startswith("## gatewaylens check: ❌ regressions")
    assert "### Regressions" in summary and "- `synth-identity/synth-000-chat[openai]: request top_p dropped" in summary
    assert step.read_text() == "earlier step\n" + summary + "\n"


def test_known_gaps_accept_a_behaviour_and_ratchet(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fixtures"
    assert run_cli("fixtures", str(run_dir), "--out", str(out)).exit_code == 0
    broken = rewrite(run_dir, tmp_path / "broken", _drop_top_p)
    gaps = tmp_path / "known-gaps.yaml"
    gaps.write_text("format_version: 1\ngaps:\n"
                    "  - {gateway: synth-identity, route: chat->openai, direction: request, path: top_p, kind: dropped,"
                    " reason: upstream has no top_p}\n"
                    "  - {gateway: synth-lossy, route: chat->openai, direction: request, path: seed, kind: dropped}\n")
    res = run_cli("check", str(broken), "--fixtures", str(out), "--known-gaps", str(gaps))
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert not [ln for ln in lines if ln.startswith("REGRESSION")]
    # the second gap is not seen anywhere: the ratchet reports it as an improvement
    assert ("IMPROVED known-gaps/synth-lossy[chat->openai]: request seed dropped: known gap no longer seen "
            f"(remove it from {gaps})") in lines
    assert "1 known gap(s) accepted" in res.stderr

    # a regression the file does not name still fails the build
    def also_drop_temperature(i: int, ex: Exchange) -> None:
        _drop_top_p(i, ex)
        if ex.gateway == "synth-identity" and ex.case_id == "synth-006-chat":
            body = ex.upstream_requests[0].body_json
            assert isinstance(body, dict)
            body.pop("temperature")

    worse = rewrite(run_dir, tmp_path / "worse", also_drop_temperature)
    res = run_cli("check", str(worse), "--fixtures", str(out), "--known-gaps", str(gaps))
    assert res.exit_code == 1
    regs = [ln for ln in res.stdout.splitlines() if ln.startswith("REGRESSION")]
    assert len(regs) == 1 and "synth-006-chat" in regs[0] and "temperature dropped" in regs[0]


@pytest.mark.parametrize(("text", "needle"), [
    ("gaps: []\n", "no format_version (not a gatewaylens known-gaps file)"),
    ("format_version: 7\ngaps: []\n", "format_version 7; this gatewaylens reads known-gaps format_version 1"),
    ("format_version: 1\ngaps:\n  - {gateway: g, route: r, direction: sideways, path: p, kind: dropped}\n", "gaps.0.direction"),
])
def test_bad_known_gaps_file_exits_2(run_dir: Path, tmp_path: Path, text: str, needle: str) -> None:
    out = tmp_path / "fixtures"
    assert run_cli("fixtures", str(run_dir), "--out", str(out)).exit_code == 0
    gaps = tmp_path / "gaps.yaml"
    gaps.write_text(text)
    res = run_cli("check", str(run_dir), "--fixtures", str(out), "--known-gaps", str(gaps))
    assert res.exit_code == 2
    assert str(gaps) in res.stderr and needle in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_a_run_directory_is_never_mistaken_for_a_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_synthetic_run(Path("run"), 6)
    write_synthetic_run(Path("check"), 6)  # a run directory that shares a subcommand's name
    res = run_cli("run", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["run_dir"] == "run" and Path("run/findings.json").is_file()
    res = run_cli("check", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["run_dir"] == "check"
    Path("check/run.json").unlink()  # no longer a run directory: the name is the subcommand again
    res = run_cli("check", "run", "--fixtures", "nope")
    assert res.exit_code == 2 and "fixtures directory not found" in res.stderr


def test_gatewaylens_help_lists_each_stage_once() -> None:
    from gatewaylens.cli import main as gl_main

    res = CliRunner().invoke(gl_main, ["--help"])
    assert res.exit_code == 0
    for stage in ("mock", "capture", "analyze"):
        assert sum(line.split()[:1] == [stage] for line in res.output.splitlines()) == 1, res.output
    res = CliRunner().invoke(main, ["--help"], prog_name="analyze")
    assert "\x00" not in res.output and "Analyze a run: analyze [RUN_DIR] [OPTIONS]" in res.output
