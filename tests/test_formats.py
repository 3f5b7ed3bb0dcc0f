"""File formats: `gatewaylens schema`, `gatewaylens corpus export`, and format versions checked on read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gatewaylens.analyze.synthetic import write_synthetic_run
from gatewaylens.capture.corpus import load_corpus, shipped_corpus_paths
from gatewaylens.cli import main as gl_main
from gatewaylens.schemas import FORMATS, schema_text

ROOT = Path(__file__).resolve().parents[1]


def gl(*args: str) -> Result:
    return CliRunner().invoke(gl_main, list(args), catch_exceptions=False)


def one_line_exit_2(res: Result, *needles: str) -> str:
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in res.output, err
    for n in needles:
        assert n in err, err
    return err


# --- gatewaylens schema -------------------------------------------------------------------------


def test_schema_lists_every_format_and_prints_each() -> None:
    res = gl("schema")
    assert res.exit_code == 0
    listed = [line.split()[0] for line in res.stdout.splitlines()]
    assert listed == list(FORMATS)
    for name in ("corpus", "gateways", "run", "exchange", "findings", "verdict", "fixture", "known-gaps",
                 "check-result"):
        assert name in listed
    for name in FORMATS:
        res = gl("schema", name)
        assert res.exit_code == 0, name
        schema = json.loads(res.stdout)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema" and schema["type"] == "object"
        assert schema["properties"], name
    assert "cases" in json.loads(gl("schema", "corpus").stdout)["required"]
    # the versioned formats document their version field
    for name, field in (("run", "format_version"), ("exchange", "format_version"), ("findings", "format_version"),
                        ("fixture", "fixture_version"), ("known-gaps", "format_version"), ("verdict", "format_version"),
                        ("check-result", "format_version"), ("corpus", "version")):
        assert field in json.loads(gl("schema", name).stdout)["properties"], name


def test_unknown_schema_is_one_line() -> None:
    one_line_exit_2(gl("schema", "nope"), "unknown format 'nope'", "corpus, gateways, run")


def test_docs_schemas_are_generated_from_the_models(tmp_path: Path) -> None:
    res = gl("schema", "--out", str(tmp_path))
    assert res.exit_code == 0
    docs = ROOT / "docs" / "schemas"
    assert sorted(p.name for p in docs.glob("*.schema.json")) == sorted(f"{n}.schema.json" for n in FORMATS)
    for name in FORMATS:
        assert (docs / f"{name}.schema.json").read_text() == schema_text(name), (
            f"docs/schemas/{name}.schema.json is stale: gatewaylens schema --out docs/schemas")


# --- gatewaylens corpus export ----------------------------------------------------------------


def test_corpus_export_round_trips(tmp_path: Path) -> None:
    shipped = load_corpus(shipped_corpus_paths()).corpus
    out = tmp_path / "sub" / "corpus.json"
    res = gl("corpus", "export", str(out))
    assert res.exit_code == 0 and f"{len(shipped.cases)} case(s) written to {out}" in res.stdout
    exported = load_corpus(out).corpus
    assert [c.id for c in exported.cases] == [c.id for c in shipped.cases]
    assert exported.model_dump() == shipped.model_dump()
    assert json.loads(out.read_text())["version"] == 1
    # the reported-bug pack (corpus.d/) is in it
    assert {c.id for c in load_corpus(ROOT / "corpus.d").corpus.cases} <= {c.id for c in exported.cases}

    one_line_exit_2(gl("corpus", "export", str(out)), f"{out}: exists (use --force to overwrite)")
    res = gl("corpus", "export", str(out), "--force", "--cases", "basic-*,tools-chat-*")
    assert res.exit_code == 0
    ids = [c.id for c in load_corpus(out).corpus.cases]
    assert ids and all(i.startswith(("basic-", "tools-chat-")) for i in ids) and "tools-chat-required" in ids
    one_line_exit_2(gl("corpus", "export", str(out), "--force", "--cases", "zzz-*"), "no shipped case matches")

    res = gl("corpus", "export", "-", "--cases", ids[0])
    assert [c["id"] for c in json.loads(res.stdout)["cases"]] == [ids[0]]


def test_capture_default_corpus_outside_a_checkout_is_the_shipped_one(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from gatewaylens.capture.corpus import default_corpus_paths

    monkeypatch.chdir(tmp_path)
    assert default_corpus_paths() == shipped_corpus_paths()
    (tmp_path / "corpus.json").write_text("{}")
    assert default_corpus_paths() == [Path("corpus.json")]  # a corpus.json here still wins (the documented default)


# --- versions checked on read -----------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_synthetic_run(tmp_path / "run", 6)


def analyze(*args: str) -> Result:
    from gatewaylens.analyze.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_written_files_carry_their_version(run_dir: Path) -> None:
    assert json.loads((run_dir / "run.json").read_text())["format_version"] == 1
    first = (run_dir / "exchanges.jsonl").read_text().splitlines()[0]
    assert first.startswith('{"format_version":1,')
    assert analyze(str(run_dir)).exit_code == 0
    assert json.loads((run_dir / "findings.json").read_text())["format_version"] == 2


@pytest.mark.parametrize("version", [9, "two", 0])
def test_run_json_of_another_version_is_one_line(run_dir: Path, version: object) -> None:
    data = json.loads((run_dir / "run.json").read_text())
    data["format_version"] = version
    (run_dir / "run.json").write_text(json.dumps(data))
    err = one_line_exit_2(analyze(str(run_dir)), f"run.json: format_version {version!r}; "
                          "this gatewaylens reads run.json format_version 1")
    assert ("upgrade" in err) == (version == 9)
    one_line_exit_2(analyze("fixtures", str(run_dir), "--out", str(run_dir / "fx")), "format_version")


def test_run_json_without_a_version_is_version_1(run_dir: Path) -> None:
    data = json.loads((run_dir / "run.json").read_text())
    del data["format_version"]  # written before the field existed: the same format
    (run_dir / "run.json").write_text(json.dumps(data))
    assert analyze(str(run_dir)).exit_code == 0


@pytest.mark.parametrize("where", ["first", "last"])
def test_exchange_of_another_version_is_one_line_even_as_the_last_line(run_dir: Path, where: str) -> None:
    path = run_dir / "exchanges.jsonl"
    lines = path.read_text().splitlines()
    i = 0 if where == "first" else len(lines) - 1
    rec = json.loads(lines[i])
    rec["format_version"] = 2
    lines[i] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n")
    one_line_exit_2(analyze(str(run_dir)), f"exchanges.jsonl:{i + 1}: format_version 2; this gatewaylens reads "
                    "exchanges.jsonl format_version 1 (written by a newer gatewaylens: upgrade to read it)")


def test_capture_resume_refuses_an_exchange_of_another_version(run_dir: Path) -> None:
    from gatewaylens.capture.corpus import InputError
    from gatewaylens.capture.rundir import load_done

    path = run_dir / "exchanges.jsonl"
    lines = path.read_text().splitlines()
    lines[-1] = lines[-1].replace('"format_version":1', '"format_version":5', 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"line 6: format_version 5; this gatewaylens reads exchanges.jsonl"):
        load_done(run_dir)
    assert len(path.read_text().splitlines()) == 6  # nothing was discarded


def test_findings_json_of_another_version_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    assert analyze(str(run_dir)).exit_code == 0
    other = write_synthetic_run(tmp_path / "other", 6)
    data = json.loads((run_dir / "findings.json").read_text())
    data["format_version"] = 1
    (run_dir / "findings.json").write_text(json.dumps(data))
    one_line_exit_2(analyze(str(other), "--baseline", str(run_dir)),
                    "findings.json: format_version 1; this gatewaylens reads findings.json format_version 2")


def test_verdict_of_another_version_is_skipped_naming_it(run_dir: Path, tmp_path: Path) -> None:
    vdir = tmp_path / "verdicts"
    vdir.mkdir()
    (vdir / "a.json").write_text(json.dumps({"format_version": 3, "case_id": "x", "gateways": [
        {"gateway": "g", "verdict": "faithful", "summary": "ok"}]}))
    res = analyze(str(run_dir), "--verdicts", str(vdir))
    assert res.exit_code == 0  # reviewer output is advisory: a bad file is skipped with its line
    assert "a.json: format_version 3; this gatewaylens reads verdict format_version 1" in res.stderr


def test_corpus_of_another_version_in_a_corpus_directory(tmp_path: Path) -> None:
    from gatewaylens.capture.corpus import InputError

    d = tmp_path / "corpus.d"
    d.mkdir()
    case = json.loads((ROOT / "corpus.json").read_text())["cases"][0]
    (d / "a.json").write_text(json.dumps({"cases": [case]}))
    (d / "b.json").write_text(json.dumps({"version": 2, "cases": [{**case, "id": "other"}]}))
    with pytest.raises(InputError, match=r"corpus.d/b.json: version 2; this gatewaylens reads corpus version 1"):
        load_corpus(d)


def test_capture_cli_bad_corpus_version_exit_2(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps({"version": 7, "cases": []}))
    r = subprocess.run([sys.executable, "-m", "gatewaylens.capture", "--corpus", str(tmp_path / "c.json"),
                        "--gateway", "g=http://127.0.0.1:9"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "c.json: version 7; this gatewaylens reads corpus version 1" in r.stderr


# --- gatewaylens gateways -------------------------------------------------------------------------


def test_gateways_list_says_ready_or_why_not() -> None:
    from gatewaylens.capture.gateways import PROFILES

    res = gl("gateways", "list")
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines[0] == f"gateways home: {ROOT}"  # run from a checkout: the checkout
    assert sorted(line.split(":")[0] for line in lines[1:]) == sorted(PROFILES)


def test_gateways_install_unknown_name_is_one_line() -> None:
    one_line_exit_2(gl("gateways", "install", "nginx"), "unknown gateway 'nginx'; known: litellm")


def test_gateways_install_outside_a_checkout_copies_the_scripts(tmp_path: Path) -> None:
    import os

    from gatewaylens.capture.gateways import litellm

    if litellm.LiteLLMLauncher().available() is not None:
        pytest.skip("LiteLLM not installed: this test reuses an install (it never installs one)")
    home = tmp_path / "home"
    env = {**os.environ, "GATEWAYLENS_HOME": str(home), "GATEWAYLENS_TOOLS": str(litellm.VENV.parent)}
    r = subprocess.run([sys.executable, "-m", "gatewaylens", "gateways", "install", "litellm"], env=env,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert f"gateways home {home}: running scripts/install-litellm.sh" in r.stderr
    assert r.stdout.strip() == f"litellm {litellm.VERSION}: already installed in {litellm.VENV}"
    assert (home / "scripts" / "install-gateways.sh").is_file()
    assert (home / "gateways" / "litellm" / "requirements.txt").read_text() == (
        ROOT / "gateways" / "litellm" / "requirements.txt").read_text()
    assert (home / "gateways" / "npm" / "package-lock.json").is_file()
    assert not (home / "gateways" / "npm" / "node_modules").exists()  # manifests only
