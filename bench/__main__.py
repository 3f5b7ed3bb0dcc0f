"""``python -m bench [--quick] [--only mock,capture,analyze]``: measure, print a table, write JSON."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from bench import analyzebench, capturebench, gatewaybench, mockbench
from bench.models import BenchFile, Figure, machine_info
from bench.procs import ROOT, MockProcess

SECTIONS = ("mock", "capture", "analyze")


def write_result(result: BenchFile, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = result.started.strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"{stamp}.json"
    n = 2
    while path.exists():
        path, n = out_dir / f"{stamp}-{n}.json", n + 1
    path.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def print_table(result: BenchFile, console: Console) -> None:
    table = Table(title="gatewaylens bench", title_justify="left")
    for col in ("figure", "value", "unit", "goal", "holds", "note"):
        table.add_column(col, justify="right" if col == "value" else "left", overflow="fold")
    for f in result.figures:
        holds = "-" if not f.goal else ("[green]yes[/]" if f.holds else "[red]NO[/]")
        value = f"{f.value:,.3f}" if abs(f.value) < 100 else f"{f.value:,.0f}"
        table.add_row(f.name, value, f.unit, f.goal or "-", holds, f.note)
    console.print(table)
    for s in result.skipped:
        console.print(f"skipped: {s}", markup=False, highlight=False)


def run_bench(*, quick: bool, only: list[str], gateway_names: list[str] | None, sizes: list[int] | None,
              out_dir: Path, settle_ms: float, say: Any) -> tuple[BenchFile, Path]:
    started = datetime.now(UTC)
    figures: list[Figure] = []
    skipped: list[str] = []
    options = {"quick": quick, "only": only, "gateways": gateway_names, "settle_ms": settle_ms}
    if "mock" in only:
        res = mockbench.run(duration=1.0, rounds=2 if quick else 8, say=say)
        figures += res.figures
    if "mock" in only or "capture" in only:
        want_gateways = gateway_names if gateway_names is not None else None
        mock = MockProcess(record=True)
        launched = gatewaybench.Launched()
        try:
            if want_gateways != []:
                launched = asyncio.run(gatewaybench.launch_all(mock.url, want_gateways, say))
                skipped += [f"gateway {s}" for s in launched.skipped]
            try:
                if "mock" in only:
                    figs, sk = gatewaybench.run(launched, mock.url, duration=1.5 if quick else 3.0, concurrency=16,
                                                say=say)
                    figures += figs
                    skipped += sk
                if "capture" in only:
                    if launched.targets:
                        cases = "basic-*" if quick else None
                        options["capture_cases"] = cases or "all"
                        figures += capturebench.run(launched.profiles(), mock.url, corpus=ROOT / "corpus.json",
                                                    cases=cases, settle_ms=settle_ms, say=say)
                        mock.stop()  # free its port: capture now starts its own mock there
                        figures += capturebench.overhead_with_own_mock(
                            launched.profiles(), mock.url, corpus=ROOT / "corpus.json", cases=cases,
                            settle_ms=settle_ms, say=say)
                    else:
                        skipped.append("capture: no gateway could be launched")
            finally:
                asyncio.run(gatewaybench.stop_all(launched))
        finally:
            mock.stop()
    if "analyze" in only:
        sizes = sizes or ([300, 1000, 3000] if quick else [1000, 10_000, 100_000])
        options["analyze_sizes"] = sizes
        figures += analyzebench.run(sizes, say=say)
    result = BenchFile(started=started, finished=datetime.now(UTC), options=options, figures=figures,
                       skipped=skipped, machine=machine_info())
    return result, write_result(result, out_dir)


@click.command(name="bench", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--quick", is_flag=True, help="Short runs, corpus subset (basic-*), small analyze sizes (~2 min).")
@click.option("--only", default=",".join(SECTIONS), show_default=True, metavar="LIST",
              help="Sections to run: mock (incl. mock vs gateways), capture, analyze.")
@click.option("--gateways", "gateways", metavar="NAMES",
              help="Gateways to launch (default: every built-in one installed here; 'none' for none).")
@click.option("--sizes", metavar="N,N,...", help="Analyze sizes (default 1000,10000,100000; quick 300,1000,3000).")
@click.option("--settle-ms", default=20.0, show_default=True, help="capture --settle-ms used in the capture figures.")
@click.option("--out", "out_dir", default=str(ROOT / "output" / "bench"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path))
def main(quick: bool, only: str, gateways: str | None, sizes: str | None, settle_ms: float, out_dir: Path) -> None:
    """Benchmark the mock, capture and analyze side by side; goals checked, JSON written."""
    sections = [s.strip() for s in only.split(",") if s.strip()]
    bad = [s for s in sections if s not in SECTIONS]
    if bad or not sections:
        click.echo(f"bench: --only: unknown section(s) {bad}; known: {', '.join(SECTIONS)}", err=True)
        sys.exit(2)
    names: list[str] | None = None
    if gateways is not None:
        names = [] if gateways.strip() == "none" else [g.strip() for g in gateways.split(",") if g.strip()]
    try:
        size_list = [int(s) for s in sizes.split(",")] if sizes else None
    except ValueError:
        click.echo(f"bench: --sizes: expected integers, got {sizes!r}", err=True)
        sys.exit(2)
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 160)
    t0 = time.perf_counter()

    def say(line: str) -> None:
        console.print(f"[dim]{time.perf_counter() - t0:6.1f}s[/] {line}", highlight=False)

    result, path = run_bench(quick=quick, only=sections, gateway_names=names, sizes=size_list, out_dir=out_dir,
                             settle_ms=settle_ms, say=say)
    print_table(result, console)
    console.print(f"written: {path}  ({time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
