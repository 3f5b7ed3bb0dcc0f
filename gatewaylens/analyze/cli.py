"""``analyze`` command line.

    analyze [RUN_DIR] [--include-kept] [--verdicts DIR] [--baseline OTHER_RUN] [--json]
    analyze --schema
    analyze fixtures RUN_DIR --out DIR
    analyze check RUN_DIR --fixtures DIR [--known-gaps FILE] [--junit FILE] [--summary FILE] [--json]
    analyze show RUN_DIR EXCHANGE [--json]

Exit codes: 0 done (``check``: no regression; CHANGED/IMPROVED lines are printed), 1 ``check`` found a regression,
2 bad input (one line naming the file and the field, no traceback).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from gatewaylens.analyze.models import FindingsFile
from gatewaylens.capture.rundir import RUN_FILE, resolve_run_dir
from gatewaylens.errors import InputError

#: the analysis itself is the group's default action, not a command a user can name: this internal
#: name holds a NUL, which no argv can, so a run directory called ``run`` is just a path.
_DEFAULT_CMD = "\x00analyze"


class _BadInput(click.ClickException):
    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"analyze: {self.format_message()}", err=True)


class _RunContext(click.Context):
    """The default command speaks as the group: usage and errors read "analyze [OPTIONS] [RUN_DIR]"."""

    @property
    def command_path(self) -> str:
        return self.parent.command_path if self.parent is not None else super().command_path


class AnalyzeGroup(click.Group):
    """``analyze RUN_DIR [OPTIONS]`` analyses a run; ``analyze fixtures|check RUN ...`` are the
    subcommands. A first argument is a subcommand only when it names one and is not a run
    directory (a directory holding ``run.json``), so no path is ever mistaken for a command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_command: click.Command | None = None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = args[0] if args else None
        is_command = first is not None and first in self.commands and not (Path(first) / RUN_FILE).is_file()
        if first is None or (not is_command and first not in ("--help", "-h")):
            args = [_DEFAULT_CMD, *args]
        return super().parse_args(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == _DEFAULT_CMD:
            return self.default_command
        return super().get_command(ctx, cmd_name)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[RUN_DIR] [OPTIONS]  |  COMMAND [ARGS]...")

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_help(ctx, formatter)
        cmd = self.default_command
        assert cmd is not None
        with formatter.section("Analyze a run: analyze [RUN_DIR] [OPTIONS]"):
            rows = [p.get_help_record(ctx) for p in cmd.get_params(ctx)]
            formatter.write_dl([r for r in rows if r is not None])


@click.group(cls=AnalyzeGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Turn a capture run into translation maps, findings.json, report.md, AI-review prompts and fixtures."""


def _console() -> Console:
    console = Console(stderr=False, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console.width = max(console.width, 150)  # logs and CI: do not squeeze the table to 80 columns
    return console


@click.command(_DEFAULT_CMD)
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option("--include-kept", is_flag=True, help="also list fields passed through unchanged in findings.json")
@click.option("--schema", is_flag=True, help="print the JSON Schema of findings.json and exit")
@click.option("--verdicts", "verdicts_dir", type=click.Path(path_type=Path), help="directory of AI reviewer verdict files")
@click.option("--baseline", "baseline_dir", type=click.Path(path_type=Path), help="another run to compare findings with")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def run_cmd(run_dir: Path | None, include_kept: bool, schema: bool, verdicts_dir: Path | None,
            baseline_dir: Path | None, as_json: bool) -> None:
    """Analyze RUN_DIR (default output/latest): findings.json, report.md, prompts/<case>.md."""
    if schema:
        click.echo(json.dumps(FindingsFile.model_json_schema(), indent=2))
        return
    from gatewaylens.analyze.pipeline import analyze_run

    try:
        rd = resolve_run_dir(run_dir)
        result = analyze_run(rd, include_kept=include_kept, verdicts_dir=verdicts_dir, baseline_dir=baseline_dir)
    except InputError as e:
        raise _BadInput(str(e)) from None
    for line in result.verdict_errors:
        click.echo(f"analyze: verdict skipped: {line}", err=True)
    for w in result.warnings:
        click.echo(f"analyze: warning: {w}", err=True)
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2))
        return
    console = _console()
    table = Table(title=f"{result.exchanges} exchanges, {result.findings} findings", title_justify="left")
    # "error/warn findings": what the translation did (capture's table says "capture failed" for
    # exchanges it could not record, a different thing)
    for col in ("gateway", "exchanges", "translated", "rejected", "no call", "error findings", "warn findings",
                "dropped", "renamed/moved", "changed", "added", "fidelity"):
        table.add_column(col, justify="left" if col == "gateway" else "right", no_wrap=col == "gateway")
    for s in result.scores:
        table.add_row(
            s.gateway, str(s.exchanges), str(s.translated), str(s.rejected), str(s.no_upstream_call + s.capture_errors),
            str(s.severities.get("error", 0)), str(s.severities.get("warn", 0)), str(s.findings.get("dropped", 0)),
            str(s.findings.get("renamed", 0) + s.findings.get("moved", 0)), str(s.findings.get("changed", 0)),
            str(s.findings.get("added", 0)), "—" if s.fidelity is None else f"{s.fidelity:.1f}",
        )
    console.print(table)
    if result.baseline is not None:
        console.print(f"baseline {result.baseline['run_id']}: {result.baseline['appeared']} finding(s) appeared, "
                      f"{result.baseline['disappeared']} disappeared")
    console.print(f"findings: {result.findings_path}")
    console.print(f"prompts:  {result.prompts_dir}/")
    console.print(f"report:   {result.report_path}")


run_cmd.context_class = _RunContext
main.default_command = run_cmd


@main.command("fixtures")
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="directory to write fixtures into")
def fixtures_cmd(run_dir: Path | None, out_dir: Path) -> None:
    """Write one normalized fixture per (gateway, case, upstream, variant) of RUN_DIR."""
    from gatewaylens.analyze.fixtures import write_fixtures

    try:
        count, warnings = write_fixtures(resolve_run_dir(run_dir), out_dir)
    except InputError as e:
        raise _BadInput(str(e)) from None
    for w in warnings:
        click.echo(f"analyze: warning: {w}", err=True)
    click.echo(f"{count} fixture(s) written to {out_dir}")


@main.command("check")
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option("--fixtures", "fixtures_dir", required=True, type=click.Path(path_type=Path), help="fixtures directory")
@click.option("--known-gaps", "known_gaps", type=click.Path(path_type=Path),
              help="YAML/JSON file of accepted behaviours: they do not fail the check")
@click.option("--junit", "junit", type=click.Path(path_type=Path),
              help="write JUnit XML: one testcase per gateway x case x upstream")
@click.option("--summary", "summary", type=click.Path(path_type=Path),
              help="write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON instead of lines")
def check_cmd(run_dir: Path | None, fixtures_dir: Path, known_gaps: Path | None, junit: Path | None,
              summary: Path | None, as_json: bool) -> None:
    """Compare RUN_DIR against fixtures: exit 1 on a regression (each difference one line), 0 otherwise."""
    import os

    from gatewaylens.analyze.fixtures import check_run, junit_xml, markdown_summary, result_json

    try:
        res = check_run(resolve_run_dir(run_dir), fixtures_dir, known_gaps)
    except InputError as e:
        raise _BadInput(str(e)) from None
    for w in res.warnings:
        click.echo(f"analyze: warning: {w}", err=True)
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(junit_xml(res), encoding="utf-8")
    md = markdown_summary(res)
    if summary is not None:
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text(md, encoding="utf-8")
    step = os.environ.get("GITHUB_STEP_SUMMARY")
    if step:
        with open(step, "a", encoding="utf-8") as fh:
            fh.write(md + "\n")
    if as_json:
        click.echo(json.dumps(result_json(res), indent=2))
    else:
        for line in res.lines():
            click.echo(line)
        if res.unchanged:
            click.echo(f"ok: {res.compared} exchange(s) match their fixtures")
        elif not res.failed:
            click.echo(f"ok: no regression in {res.compared} exchange(s)")
    if res.known:
        click.echo(f"{len(res.known)} known gap(s) accepted", err=True)
    if res.failed:
        click.echo(f"{len(res.regressions)} regression(s), {len(res.changes)} change(s), {len(res.improvements)} "
                   f"improvement(s) against {fixtures_dir} (regenerate with: analyze fixtures RUN --out {fixtures_dir})",
                   err=True)
        sys.exit(1)


@main.command("show")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("exchange")
@click.option("--json", "as_json", is_flag=True, help="print the exchange, its outcome and findings as JSON")
def show_cmd(run_dir: Path, exchange: str, as_json: bool) -> None:
    """Print one captured exchange: client request, what reached the upstream, what the client got
    back, and its translation map. EXCHANGE is an exchange id (GATEWAY/CASE/UPSTREAM[/VARIANT]) or
    its unique beginning."""
    from gatewaylens.analyze.engine import analyze_exchange
    from gatewaylens.analyze.show import find_exchange, render, terminal, view_json

    try:
        ex = find_exchange(resolve_run_dir(run_dir), exchange)
    except InputError as e:
        raise _BadInput(str(e)) from None
    result = analyze_exchange(ex)
    if as_json:
        click.echo(json.dumps(view_json(result), indent=2, ensure_ascii=False))
        return
    render(terminal(), result)


if __name__ == "__main__":  # pragma: no cover
    main()
