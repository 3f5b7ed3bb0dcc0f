"""``gatewaylens schema``, ``corpus`` and ``gateways``: file formats, the shipped corpus, the built-in gateways.

    gatewaylens schema                 list the formats
    gatewaylens schema NAME            print the JSON Schema of one (from its pydantic model)
    gatewaylens schema --out DIR       write every schema to DIR/NAME.schema.json
    gatewaylens corpus export PATH     write the shipped corpus (corpus.json + corpus.d/) as one file
    gatewaylens gateways list          the built-in gateways: ready, or why not
    gatewaylens gateways install [N…]  install them into the gateways home (the pinned scripts)

Exit codes: 0 done, 2 bad input (one line, no traceback).
"""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

import click

from gatewaylens.errors import one_line


def _fail(prog: str, message: str) -> None:
    click.echo(f"{prog}: {one_line(message, 600)}", err=True)
    sys.exit(2)


@click.command("schema", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("name", required=False)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="write every schema to DIR/NAME.schema.json instead")
def schema_cmd(name: str | None, out_dir: Path | None) -> None:
    """Print the JSON Schema of the file format NAME; without NAME, list the formats."""
    from gatewaylens.schemas import FORMATS, schema_text

    if out_dir is not None:
        if name is not None:
            _fail("gatewaylens schema", "give NAME or --out, not both")
        out_dir.mkdir(parents=True, exist_ok=True)
        for n in FORMATS:
            (out_dir / f"{n}.schema.json").write_text(schema_text(n), encoding="utf-8")
        click.echo(f"{len(FORMATS)} schema(s) written to {out_dir}")
        return
    if name is None:
        width = max(len(n) for n in FORMATS)
        for n, fmt in FORMATS.items():
            click.echo(f"{n:<{width}}  {fmt.file}  (written by {fmt.written_by})")
        return
    if name not in FORMATS:
        _fail("gatewaylens schema", f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    click.echo(schema_text(name), nl=False)


@click.group("corpus", context_settings={"help_option_names": ["-h", "--help"]})
def corpus_cmd() -> None:
    """The corpus shipped with gatewaylens."""


@corpus_cmd.command("export")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--cases", "cases_glob", metavar="GLOB", help="only cases whose id matches (fnmatch; comma-separated)")
@click.option("--force", is_flag=True, help="overwrite PATH when it exists")
def export_cmd(path: Path, cases_glob: str | None, force: bool) -> None:
    """Write the shipped corpus (corpus.json and corpus.d/, merged) to PATH ('-': stdout), ready to
    edit and pass to capture --corpus PATH."""
    from gatewaylens.capture.corpus import InputError, load_corpus, shipped_corpus_paths

    prog = "gatewaylens corpus export"
    try:
        corpus = load_corpus(shipped_corpus_paths()).corpus
    except InputError as e:
        _fail(prog, str(e))
        return
    if cases_glob:
        globs = [g.strip() for g in cases_glob.split(",") if g.strip()]
        corpus.cases = [c for c in corpus.cases if any(fnmatch.fnmatchcase(c.id, g) for g in globs)]
        if not corpus.cases:
            _fail(prog, f"--cases {cases_glob!r}: no shipped case matches")
    data = json.loads(corpus.model_dump_json(exclude_defaults=True))
    text = json.dumps({"version": corpus.version, **data}, indent=1, ensure_ascii=False) + "\n"
    if str(path) == "-":
        click.echo(text, nl=False)
        return
    if path.exists() and not force:
        _fail(prog, f"{path}: exists (use --force to overwrite)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        _fail(prog, f"{path}: cannot write: {e.strerror or e}")
    click.echo(f"{len(corpus.cases)} case(s) written to {path}")


#: built-in gateway -> the install script that installs it (shipped in the wheel)
INSTALL_SCRIPTS = {
    "litellm": "install-litellm.sh", "litellm-chat": "install-litellm.sh",
    "portkey": "install-npm-gateways.sh", "claude-code-router": "install-npm-gateways.sh",
    "gomodel": "install-go-gateways.sh", "bifrost": "install-go-gateways.sh",
    "bricksllm": "install-bricksllm.sh",
}


@click.group("gateways", context_settings={"help_option_names": ["-h", "--help"]})
def gateways_cmd() -> None:
    """The built-in gateways capture --launch starts: where they are installed, and installing them.

    They live in the gateways home: $GATEWAYLENS_HOME, else the checkout gatewaylens runs from,
    else ~/.cache/gatewaylens (an installed wheel)."""


@gateways_cmd.command("list")
def gateways_list_cmd() -> None:
    """Each built-in gateway with a local launcher: ready, or why not (one line each)."""
    from gatewaylens.capture import gateways
    from gatewaylens.datafiles import gateways_home

    click.echo(f"gateways home: {gateways_home()}")
    for name, prof in sorted(gateways.PROFILES.items()):
        cls = gateways.LAUNCHERS.get(prof.launcher or "")
        if cls is None:
            click.echo(f"{name}: no local launcher (containers only: capture --docker)")
            continue
        try:
            reason = cls().available()
        except Exception as e:  # a probe must not take the listing down
            reason = f"cannot check: {one_line(str(e), 160)}"
        click.echo(f"{name}: " + ("ready" if reason is None else one_line(reason, 300)))


@gateways_cmd.command("install")
@click.argument("names", nargs=-1)
def gateways_install_cmd(names: tuple[str, ...]) -> None:
    """Install the built-in gateways NAMES (default: every one this machine can run) into the
    gateways home with the pinned install scripts; from a wheel, the scripts and their manifests
    are copied there first. Exit code: the scripts'."""
    import shutil
    import subprocess

    from gatewaylens.datafiles import SHIPPED, checkout_root, data_path, gateways_home

    prog = "gatewaylens gateways install"
    unknown = [n for n in names if n not in INSTALL_SCRIPTS]
    if unknown:
        _fail(prog, f"unknown gateway {', '.join(map(repr, unknown))}; known: {', '.join(INSTALL_SCRIPTS)}")
    home = gateways_home()
    if home != checkout_root():
        try:  # the scripts find their manifests beside them (ROOT = the script's ../): copy exactly those
            for rel in SHIPPED:
                if not rel.startswith(("scripts/", "gateways/")):
                    continue
                src = data_path(rel)
                if not src.is_file():
                    _fail(prog, f"{src}: missing from this installation (reinstall gatewaylens)")
                (home / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, home / rel)
        except OSError as e:
            _fail(prog, f"{home}: cannot write: {e.strerror or e}")
    scripts = sorted({INSTALL_SCRIPTS[n] for n in names}) if names else ["install-gateways.sh"]
    code = 0
    for script in scripts:
        click.echo(f"gateways home {home}: running scripts/{script}", err=True)
        code = max(code, subprocess.run(["bash", str(home / "scripts" / script)], check=False).returncode)
    sys.exit(code)
