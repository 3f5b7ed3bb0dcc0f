"""``analyze RUN_DIR``: findings.json, report.md and prompts/, streamed from exchanges.jsonl.

Outputs are written to temporary names and moved into place at the end, so bad input found half-way
(exit 2) never leaves a half-written report behind.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from gatewaylens.analyze.behaviours import BehaviourBuilder
from gatewaylens.analyze.bugs import BugBoard
from gatewaylens.analyze.conversations import ConversationTracker, analyze_exchanges, with_conversation
from gatewaylens.analyze.engine import ExchangeResult, analyze_exchange, case_expectations, load_case_notes
from gatewaylens.analyze.html_report import HtmlCollector, render_html
from gatewaylens.analyze.models import (
    FINDINGS_FORMAT_VERSION,
    AnalyzerInfo,
    Behaviour,
    ExchangeSummary,
    FindingRow,
    FindingsFile,
    GatewayScore,
    Verdict,
)
from gatewaylens.analyze.prompts import PromptWriter
from gatewaylens.analyze.report import Aggregator, RenderedReport, baseline_diff, finding_key, render_reports
from gatewaylens.capture.models import Exchange, Expectation, RunInfo
from gatewaylens.capture.rundir import EXCHANGES_FILE, iter_exchanges, iter_lines, load_run, parse_line
from gatewaylens.errors import InputError, validation_line

try:
    from importlib.metadata import version as _pkg_version

    TOOL_VERSION = _pkg_version("gatewaylens")
except Exception:  # pragma: no cover - not installed as a distribution
    TOOL_VERSION = "0"


@dataclass
class AnalysisResult:
    run_dir: Path
    findings_path: Path
    report_path: Path
    prompts_dir: Path
    exchanges: int
    findings: int
    scores: list[GatewayScore]
    warnings: list[str] = field(default_factory=list)
    verdict_errors: list[str] = field(default_factory=list)
    verdicts: int = 0
    baseline: dict[str, Any] | None = None
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir), "report": str(self.report_path), "findings": str(self.findings_path),
            "prompts": str(self.prompts_dir), "exchanges": self.exchanges, "finding_count": self.findings,
            "seconds": round(self.seconds, 3),
            "exchanges_per_second": round(self.exchanges / self.seconds, 1) if self.seconds > 0 else None,
            "gateways": [s.model_dump() for s in self.scores], "warnings": self.warnings,
            "verdict_errors": self.verdict_errors, "verdicts": self.verdicts,
            "baseline": None if self.baseline is None else {k: self.baseline[k] for k in ("run_id", "appeared", "disappeared")},
        }


class FindingsWriter:
    """Writes findings.json without holding the findings: header, streamed rows, then the tail."""

    def __init__(self, path: Path, run: RunInfo) -> None:

        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.tmp_ex = path.with_name(f".{path.name}.{os.getpid()}.exchanges.tmp")
        self.fh: TextIO = self.tmp.open("w", encoding="utf-8")
        self.ex_fh: TextIO = self.tmp_ex.open("w", encoding="utf-8")
        self.fh.write(f'{{"format_version": {FINDINGS_FORMAT_VERSION},\n"run": ' + run.model_dump_json() + ',\n"findings": [')
        self.count = 0
        self.ex_count = 0

    def add(self, rows: list[Any], summary_json: str) -> None:
        fh = self.fh
        for row in rows:
            fh.write(",\n" if self.count else "\n")
            fh.write(json.dumps(row.as_dict(), ensure_ascii=False, separators=(",", ":")))
            self.count += 1
        self.ex_fh.write((",\n" if self.ex_count else "\n") + summary_json)
        self.ex_count += 1

    def close(self, analyzer: AnalyzerInfo, scores: list[GatewayScore], behaviours: list[Behaviour]) -> None:
        self.ex_fh.close()
        self.fh.write('\n],\n"exchanges": [')
        with self.tmp_ex.open("r", encoding="utf-8") as src:
            shutil.copyfileobj(src, self.fh)
        self.fh.write('\n],\n"behaviours": [')
        for i, b in enumerate(behaviours):
            self.fh.write((",\n" if i else "\n") + b.model_dump_json())
        self.fh.write('\n],\n"scores": ' + json.dumps([s.model_dump() for s in scores], ensure_ascii=False))
        self.fh.write(',\n"analyzer": ' + analyzer.model_dump_json() + "\n}\n")
        self.fh.close()
        self.tmp_ex.unlink(missing_ok=True)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        for fh in (self.fh, self.ex_fh):
            if not fh.closed:
                fh.close()
        self.tmp.unlink(missing_ok=True)
        self.tmp_ex.unlink(missing_ok=True)


#: Below this size a run is analysed in-process: a pool's start-up would cost more than it saves.
PARALLEL_MIN_BYTES = 4 << 20
#: Exchanges per task sent to a worker, and tasks in flight per worker (memory stays flat: at
#: most ``workers * IN_FLIGHT * CHUNK`` exchanges are held at once).
CHUNK = 64
IN_FLIGHT = 3


def analysis_workers(path: Path) -> int:
    """Worker processes for a run: ``GATEWAYLENS_ANALYZE_WORKERS`` if set (0 or 1: in-process),
    else one per CPU (at most 4) for runs of at least :data:`PARALLEL_MIN_BYTES`."""
    env = os.environ.get("GATEWAYLENS_ANALYZE_WORKERS", "").strip()
    if env:
        try:
            return max(int(env), 1)
        except ValueError:
            raise InputError(f"GATEWAYLENS_ANALYZE_WORKERS={env!r}: not an integer") from None
    try:
        size = path.stat().st_size
    except OSError:
        return 1
    if size < PARALLEL_MIN_BYTES or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


@dataclass(slots=True)
class Analyzed:
    """A worker's result for one exchange: what the writers need, without the Exchange itself
    (its line is parsed again in the parent only when a prompt needs it)."""

    lineno: int
    findings: list[FindingRow]
    summary: ExchangeSummary
    fields: dict[str, str]
    summary_json: str


def _analyze_chunk(path: str, include_kept: bool, lines: list[tuple[int, str, bool]],
                   expects: dict[str, list[Expectation]]) -> tuple[list[Analyzed], list[str]]:
    warnings: list[str] = []
    out: list[Analyzed] = []
    for lineno, raw, last in lines:
        ex = parse_line(Path(path), lineno, raw, last=last, warnings=warnings)
        if ex is None:
            continue
        r = analyze_exchange(ex, include_kept=include_kept, expectations=expects.get(ex.case_id, ()))
        out.append(Analyzed(lineno, r.findings, r.summary, r.fields, r.summary.model_dump_json()))
    return out, warnings


def _chunks(path: Path, warnings: list[str]) -> Iterator[list[tuple[int, str, bool]]]:
    chunk: list[tuple[int, str, bool]] = []
    for item in iter_lines(path, warnings):
        chunk.append(item)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def iter_analyzed_parallel(run_dir: Path, warnings: list[str], *, include_kept: bool, workers: int,
                           expects: dict[str, list[Expectation]] | None = None) -> Iterator[tuple[Analyzed, str]]:
    """Exchanges analysed by a pool of forked workers, yielded in file order, with a bounded
    number of chunks in flight (the JSONL is streamed, never loaded whole)."""
    path = run_dir / EXCHANGES_FILE
    pending: deque[tuple[Future[tuple[list[Analyzed], list[str]]], dict[int, str]]] = deque()

    def collect() -> Iterator[tuple[Analyzed, str]]:
        fut, lines = pending.popleft()
        done, chunk_warnings = fut.result()
        warnings.extend(chunk_warnings)
        for a in done:
            yield a, lines[a.lineno]

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        try:
            for chunk in _chunks(path, warnings):
                pending.append((pool.submit(_analyze_chunk, str(path), include_kept, chunk, expects or {}),
                                {lineno: raw for lineno, raw, _last in chunk}))
                if len(pending) >= workers * IN_FLIGHT:
                    yield from collect()
            while pending:
                yield from collect()
        except BaseException:
            for fut, _lines in pending:
                fut.cancel()
            raise


def load_verdicts(vdir: Path) -> tuple[dict[str, list[Verdict]], list[str]]:
    """Valid verdict files by case; one line per bad file (it is skipped, the rest still merge)."""
    if not vdir.is_dir():
        raise InputError(f"{vdir}: verdicts directory not found")
    out: dict[str, list[Verdict]] = {}
    errors: list[str] = []
    for path in sorted(vdir.glob("*.json")):
        try:
            v = Verdict.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as e:
            errors.append(f"{path}: {validation_line(e)}")
            continue
        except (OSError, UnicodeDecodeError) as e:
            errors.append(f"{path}: cannot read ({e})")
            continue
        out.setdefault(v.case_id, []).append(v)
    return out, errors


def load_findings_file(path: Path) -> FindingsFile:
    try:
        return FindingsFile.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    except ValidationError as e:
        raise InputError(f"{path}: {validation_line(e)}") from None


def baseline_keys(other: Path) -> tuple[str, set[tuple[str, ...]], list[str]]:
    """Finding keys of another run: from its findings.json, else by analysing it in memory."""
    run_dir = other
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: baseline run directory not found")
    fpath = run_dir / "findings.json"
    if fpath.exists():
        ff = load_findings_file(fpath)
        keys = {finding_key(f) for f in ff.findings if not (f.kind == "kept" and f.severity == "info")}  # type: ignore[arg-type]
        return ff.run.id, keys, []
    run = load_run(run_dir)
    warnings: list[str] = []
    agg = Aggregator(track_keys=True)
    for result in analyze_exchanges(iter_exchanges(run_dir, warnings)):
        agg.add(result)
    return run.id, agg.keys, warnings


def families_of(run: RunInfo) -> dict[str, str]:
    """Profile name -> gateway family (profiles of one gateway share behaviours)."""
    return {g.name: g.family or g.name for g in run.gateways}


def write_report_files(run_dir: Path, report: RenderedReport) -> None:
    """report.md and report/<gateway>.md, each written to a temporary name and moved into place."""
    detail_dir = run_dir / "report"
    tmp_dir = run_dir / f".report.{os.getpid()}.tmp"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir()
    for rel, text in report.gateway_files.items():
        (tmp_dir / Path(rel).name).write_text(text, encoding="utf-8")
    shutil.rmtree(detail_dir, ignore_errors=True)
    os.replace(tmp_dir, detail_dir)
    tmp_report = run_dir / f".report.md.{os.getpid()}.tmp"
    tmp_report.write_text(report.main, encoding="utf-8")
    os.replace(tmp_report, run_dir / "report.md")


class _Seen:
    """Exchange ids, gateways and cases met so far: a repeated exchange line (a copy pasted twice,
    two runs concatenated) is analysed once, with a warning, not counted twice."""

    def __init__(self, warnings: list[str]) -> None:
        self.ids: set[str] = set()
        self.gateways: set[str] = set()
        self.cases: set[str] = set()
        self.warnings = warnings

    def repeated(self, exchange_id: str, gateway: str, case_id: str, lineno: int | None) -> bool:
        if exchange_id in self.ids:
            where = f" (line {lineno})" if lineno is not None else ""
            self.warnings.append(f"exchanges.jsonl: exchange {exchange_id} appears again{where}: the first is kept")
            return True
        self.ids.add(exchange_id)
        self.gateways.add(gateway)
        self.cases.add(case_id)
        return False

    def stray_verdicts(self, verdicts: dict[str, list[Verdict]]) -> list[str]:
        """One line per verdict about a case or gateway this run does not have (then ignored)."""
        out: list[str] = []
        for case_id in list(verdicts):
            if case_id not in self.cases:
                out.append(f"verdict for case {case_id!r}: no such case in this run, ignored")
                del verdicts[case_id]
                continue
            for v in verdicts[case_id]:
                stray = [g.gateway for g in v.gateways if g.gateway not in self.gateways]
                if stray:
                    out.append(f"verdict for case {case_id!r}: gateway(s) {', '.join(stray)} not in this run, ignored")
                    v.gateways = [g for g in v.gateways if g.gateway in self.gateways] or v.gateways[:0]
            verdicts[case_id] = [v for v in verdicts[case_id] if v.gateways]
        return out


def analyze_run(run_dir: Path, *, include_kept: bool = False, verdicts_dir: Path | None = None,
                baseline_dir: Path | None = None) -> AnalysisResult:
    started = time.perf_counter()
    run = load_run(run_dir)
    verdicts: dict[str, list[Verdict]] = {}
    verdict_errors: list[str] = []
    if verdicts_dir is not None:
        verdicts, verdict_errors = load_verdicts(verdicts_dir)
    baseline_info: tuple[str, set[tuple[str, ...]], list[str]] | None = None
    if baseline_dir is not None:
        baseline_info = baseline_keys(baseline_dir)
    notes = load_case_notes(run_dir, run)
    expects = case_expectations(notes)
    warnings: list[str] = []
    if not notes:
        warnings.append("corpus not found (run.json corpus_path / corpus.json in the run): case notes omitted")
    findings_path = run_dir / "findings.json"
    report_path = run_dir / "report.md"
    prompts_dir = run_dir / "prompts"
    tmp_prompts = run_dir / f".prompts.{os.getpid()}.tmp"
    shutil.rmtree(tmp_prompts, ignore_errors=True)
    writer = FindingsWriter(findings_path, run)
    prompts = PromptWriter(tmp_prompts, notes)
    agg = Aggregator(track_keys=baseline_info is not None)
    builder = BehaviourBuilder(families_of(run))
    html = HtmlCollector()
    tracker = ConversationTracker(include_kept)
    bugs = BugBoard(notes)
    exchanges = 0
    seen = _Seen(warnings)
    if (run_dir / EXCHANGES_FILE).is_dir():
        raise InputError(f"{run_dir / EXCHANGES_FILE}: is a directory, not an exchanges file")
    try:
        workers = analysis_workers(run_dir / EXCHANGES_FILE)
        if workers > 1:
            for done, raw in iter_analyzed_parallel(run_dir, warnings, include_kept=include_kept, workers=workers,
                                                    expects=expects):
                if seen.repeated(done.summary.id, done.summary.gateway, done.summary.case_id, done.lineno):
                    continue
                if done.summary.turn is not None:
                    # Cross-turn findings need the turns in order: done here, in the parent, for the
                    # (few) conversation exchanges only.
                    extra = tracker.add(Exchange.model_validate_json(raw))
                    if extra:
                        with_conversation(done, extra)
                        done.summary_json = done.summary.model_dump_json()
                bugs.add(done)
                builder.add(done.findings)
                writer.add(done.findings, done.summary_json)
                agg.add(done)
                html.add(done.findings, done.summary,
                         Exchange.model_validate_json(raw) if html.wants(done.summary) else None)
                case_id = done.summary.case_id
                if prompts.wants(case_id):
                    # Only the first exchanges of a case go into its prompt: those are parsed again
                    # here rather than every Exchange being sent back from the workers.
                    prompts.add(ExchangeResult(Exchange.model_validate_json(raw), done.findings,
                                               done.summary, done.fields))
                else:
                    prompts.omit(case_id)
                exchanges += 1
        else:
            fresh = (ex for ex in iter_exchanges(run_dir, warnings)
                     if not seen.repeated(ex.id, ex.gateway, ex.case_id, None))
            for result in analyze_exchanges(fresh, include_kept=include_kept, expects=expects):
                bugs.add(result)
                builder.add(result.findings)
                writer.add(result.findings, result.summary.model_dump_json())
                agg.add(result)
                html.add(result.findings, result.summary, result.exchange)
                prompts.add(result)
                exchanges += 1
    except BaseException:
        writer.abort()
        shutil.rmtree(tmp_prompts, ignore_errors=True)
        raise
    baseline = None
    if baseline_info is not None:
        baseline = baseline_diff(agg.keys, baseline_info[1])
        baseline["run_id"] = baseline_info[0]
        warnings.extend(f"baseline: {w}" for w in baseline_info[2])
    verdict_errors.extend(seen.stray_verdicts(verdicts))
    behaviours = builder.finish()
    report = render_reports(agg, run, notes=notes, verdicts=verdicts, verdict_errors=verdict_errors,
                            baseline=baseline, warnings=warnings, include_kept=include_kept, behaviours=behaviours,
                            html_name="report.html", bugs=bugs)
    scores = agg.finish_scores()
    page = render_html(html, run, behaviours, scores)
    writer.close(AnalyzerInfo(tool_version=TOOL_VERSION, include_kept=include_kept, exchanges=exchanges,
                              skipped_lines=sum(1 for w in warnings if "invalid last line" in w), warnings=warnings), scores,
                 behaviours)
    prompts.finish()
    shutil.rmtree(prompts_dir, ignore_errors=True)
    os.replace(tmp_prompts, prompts_dir)
    write_report_files(run_dir, report)
    tmp_html = run_dir / f".report.html.{os.getpid()}.tmp"
    tmp_html.write_text(page, encoding="utf-8")
    os.replace(tmp_html, run_dir / "report.html")
    return AnalysisResult(
        run_dir=run_dir, findings_path=findings_path, report_path=report_path, prompts_dir=prompts_dir,
        exchanges=exchanges, findings=writer.count, scores=scores, warnings=warnings,
        verdict_errors=verdict_errors, verdicts=sum(len(v) for v in verdicts.values()), baseline=baseline,
        seconds=time.perf_counter() - started,
    )
