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
