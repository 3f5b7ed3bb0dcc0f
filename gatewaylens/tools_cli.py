"""``gatewaylens schema`` and ``gatewaylens corpus``: the file formats and the shipped corpus.

    gatewaylens schema                 list the formats
    gatewaylens schema NAME            print the JSON Schema of one (from its pydantic model)
    gatewaylens schema --out DIR       write every schema to DIR/NAME.schema.json
    gatewaylens corpus export PATH     write the shipped corpus (corpus.json + corpus.d/) as one file

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
