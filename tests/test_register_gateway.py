"""Registering a GoModel/Bifrost binary built from the user's source tree (scripts/register-built-gateway.sh).

The binaries here are tiny Go programs this test writes and builds itself, laid out like each
gateway's tree (the module path, main package and version file the registration checks), so the
real checks run (``go version -m``, ``-version``, ``git describe``) without any third-party code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gatewaylens.capture.gateways import LAUNCHERS, _go, _source
from gatewaylens.capture.gateways._source import SourceBuild, SourceError, register
from gatewaylens.capture.launch import PROJECT_ROOT

needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain (go) on PATH")

SCRIPT = PROJECT_ROOT / "scripts" / "register-built-gateway.sh"

_MAIN = '''package main

import (
\t"flag"
\t"fmt"
)

var Version = "dev"

func main() {
\tv := flag.Bool("version", false, "")
\tflag.Parse()
\tif *v {
\t\tfmt.Printf("%s %s (commit: none, built: unknown, go)\\n", "{name}", Version)
\t}
}
'''


def go_tree(root: Path, module: str, module_dir: str, main_dir: str, name: str) -> Path:
    """A Go module at ``root/module_dir`` whose main package is ``main_dir`` (relative to the module)."""
    mod = root / module_dir
    (mod / main_dir).mkdir(parents=True, exist_ok=True)
    (mod / "go.mod").write_text(f"module {module}\n\ngo 1.21\n")
    (mod / main_dir / "main.go").write_text(_MAIN.replace("{name}", name))
    return mod


def go_build(mod: Path, main_dir: str, out: Path, version: str | None = None) -> Path:
    ldflags = ["-ldflags", f"-X main.Version={version}"] if version else []
    env = {**os.environ, "GOFLAGS": "-buildvcs=false", "GOWORK": "off", "CGO_ENABLED": "0"}
    subprocess.run(["go", "build", "-trimpath", *ldflags, "-o", str(out), f"./{main_dir}"], cwd=mod, env=env,
                   check=True, capture_output=True, timeout=300)
    return out


def git_tag(tree: Path, tag: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "tree"], ["tag", tag]):
        subprocess.run(["git", "-C", str(tree), *cmd], check=True, capture_output=True, env=env)


@pytest.fixture
def bin_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    d = tmp_path / "tools" / "bin"
    monkeypatch.setattr(_go, "GO_BIN", d)
    return d


@pytest.fixture(scope="module")
def gomodel_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(tree, stamped binary v9.9.9, unstamped binary) shaped like GoModel's: module gomodel, cmd/gomodel."""
    root = tmp_path_factory.mktemp("gomodel-src")
    tree = go_tree(root, "gomodel", ".", "cmd/gomodel", "gomodel")
    out = tmp_path_factory.mktemp("gomodel-out")
    return (tree, go_build(tree, "cmd/gomodel", out / "gomodel", "v9.9.9"),
            go_build(tree, "cmd/gomodel", out / "gomodel-dev"))


@needs_go
def test_gomodel_registers_at_the_version_the_binary_reports(bin_dir: Path, gomodel_tree: tuple[Path, Path, Path]) -> None:
    tree, binary, _ = gomodel_tree
    record = register("gomodel", binary, tree)
    assert (record.version, record.version_from, record.commit) == ("v9.9.9", "gomodel -version", None)
    assert record.main_path == "gomodel/cmd/gomodel" and record.go_version.startswith("go")
    assert (bin_dir / "gomodel.version").read_text() == "v9.9.9\n"
    assert SourceBuild.model_validate_json((bin_dir / "gomodel.source.json").read_text()) == record
    launcher = LAUNCHERS["gomodel"]()
    # Not the pin (v0.1.22), and accepted: a registered build runs at the version its tree declares.
    assert launcher.available() is None
    assert launcher.version() == "v9.9.9"
    assert launcher.build() == record.describe() and "v9.9.9" in record.describe()
    # A binary swapped after registration is not trusted.
    (bin_dir / "gomodel").write_bytes((bin_dir / "gomodel").read_bytes() + b"\0")
    reason = launcher.available()
    assert reason and "changed since it was registered" in reason and "\n" not in reason


@needs_go
def test_git_describe_gives_the_version_of_an_unstamped_binary(bin_dir: Path, tmp_path: Path,
                                                               gomodel_tree: tuple[Path, Path, Path]) -> None:
    tree, _, unstamped = gomodel_tree
    checkout = tmp_path / "checkout"
    shutil.copytree(tree, checkout)
    git_tag(checkout, "v1.2.3")
    record = register("gomodel", unstamped, checkout)
    assert (record.version, record.version_from) == ("v1.2.3", "git describe --tags")
    assert record.commit and len(record.commit) == 40
    # The binary says v9.9.9 while the tree is v1.2.3: not built from this tree.
    with pytest.raises(SourceError, match=r"says it is v9\.9\.9 but .* is v1\.2\.3"):
        register("gomodel", gomodel_tree[1], checkout)


@needs_go
def test_no_version_anywhere_is_refused(bin_dir: Path, gomodel_tree: tuple[Path, Path, Path]) -> None:
    tree, _, unstamped = gomodel_tree
    with pytest.raises(SourceError, match="cannot tell its version"):
        register("gomodel", unstamped, tree)
    assert not (bin_dir / "gomodel").exists()  # nothing half-installed


@needs_go
def test_bifrost_tree_version_file_and_schema(bin_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "bifrost-src"
    mod = go_tree(root, "github.com/maximhq/bifrost/transports", "transports", "bifrost-http", "bifrost")
    (mod / "version").write_text("1.4.14\n")
    binary = go_build(mod, "bifrost-http", tmp_path / "bifrost-http")
    launcher = LAUNCHERS["bifrost"]()
    with pytest.raises(SourceError, match=r"transports/config\.schema\.json: missing"):
        register("bifrost", binary, root)
    (mod / "config.schema.json").write_text('{"type": "object"}\n')
    record = register("bifrost", binary, root)
    assert (record.version, record.version_from) == ("v1.4.14", "transports/version")
    assert (bin_dir / "bifrost-http.schema.json").read_text() == '{"type": "object"}\n'
    assert launcher.available() is None and launcher.version() == "v1.4.14"
    # Without the schema beside it Bifrost would download one at start: the launcher refuses.
    (bin_dir / "bifrost-http.schema.json").unlink()
    reason = launcher.available()
    assert reason and "bifrost-http.schema.json is missing" in reason and "register-built-gateway.sh" in reason


@needs_go
def test_wrong_binary_or_tree_is_one_line_exit_2(tmp_path: Path, gomodel_tree: tuple[Path, Path, Path]) -> None:
    tree, binary, _ = gomodel_tree
    env = {**os.environ, "GATEWAYLENS_TOOLS": str(tmp_path / "tools")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)

    other = go_tree(tmp_path / "other", "example.com/other", ".", "cmd/gomodel", "gomodel")
    cases = {
        "a tree of another module": (("gomodel", str(binary), str(other)), "declares module 'example.com/other'"),
        "a binary of another main package": (("gomodel", str(go_build(other, "cmd/gomodel", tmp_path / "o")), str(tree)),
                                             "not a gomodel binary"),
        "not a Go binary": (("gomodel", shutil.which("true") or "/bin/true", str(tree)), "not a Go binary"),
        "no tree": (("gomodel", str(binary), str(tmp_path / "nowhere")), "not a directory"),
    }
    for case, (args, want) in cases.items():
        r = run(*args)
        assert r.returncode == 2, (case, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and want in lines[0] and "Traceback" not in r.stderr, (case, r.stderr)
    assert not (tmp_path / "tools" / "bin" / "gomodel").exists()
    r = run("gomodel", str(binary), str(tree))
    assert r.returncode == 0 and r.stdout.startswith("gomodel: registered "), r.stderr
    assert json.loads((tmp_path / "tools" / "bin" / "gomodel.source.json").read_text())["version"] == "v9.9.9"


@needs_go
def test_a_broken_source_record_is_named(bin_dir: Path, gomodel_tree: tuple[Path, Path, Path]) -> None:
    register("gomodel", gomodel_tree[1], gomodel_tree[0])
    (bin_dir / "gomodel.source.json").write_text('{"format_version": 7}')
    reason = LAUNCHERS["gomodel"]().available()
    assert reason and "gomodel.source.json: not a valid source record" in reason and "\n" not in reason
    assert _source.source_json("gomodel") == bin_dir / "gomodel.source.json"


def test_report_header_says_how_a_binary_was_built(tmp_path: Path) -> None:
    from gatewaylens.analyze.pipeline import analyze_run
    from gatewaylens.analyze.synthetic import write_synthetic_run
    from gatewaylens.capture.models import RunInfo

    run = write_synthetic_run(tmp_path / "run", 6)
    info = RunInfo.model_validate_json((run / "run.json").read_text())
    line = "built from source: v9.9.9 (version from gomodel -version), commit 0123456789ab, go1.26.8, main package x"
    info.gateways[0].build = line
    (run / "run.json").write_text(info.model_dump_json(indent=2))
    md = analyze_run(run).report_path.read_text(encoding="utf-8")
    header = md.split("## ", 1)[0]
    assert f"- {info.gateways[0].name}: {line}" in header
    assert sum(1 for g in info.gateways if g.build) == 1 == header.count("built from source")
