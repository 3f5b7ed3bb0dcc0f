"""The public, typed API of gatewaylens (re-exported at the top level; see ``__all__``).

Everything here is quiet: no signal handlers, nothing on the terminal unless ``verbose=True``.

    async with MockServer() as mock:                      # free port, in-process
        exchanges = await capture(["mygw=http://127.0.0.1:4000"], mock_url=mock.url,
                                  cases=["tools-chat-required"])
    result = analyze(exchanges)                           # findings, behaviours, scores
    outcome = check(exchanges, "tests/gatewaylens/fixtures")
    assert not outcome.regressions, outcome.lines()
    assert_translation(exchanges, no_errors=True)          # or: the pytest plugin's fixtures
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gatewaylens.analyze.behaviours import BehaviourBuilder
from gatewaylens.analyze.conversations import analyze_exchanges
from gatewaylens.analyze.fixtures import (
    CheckResult,
    check_fixtures,
    fixture_of,
    load_fixtures,
    load_known_gaps,
)
from gatewaylens.analyze.models import Behaviour, Finding, GatewayScore
from gatewaylens.analyze.report import Aggregator
from gatewaylens.assertions import TranslationChanged, assert_translation
from gatewaylens.capture.corpus import load_corpus as _load_corpus_file
from gatewaylens.capture.corpus import shipped_corpus_paths
from gatewaylens.capture.models import Case, Corpus, Exchange, GatewayProfile
from gatewaylens.capture.rundir import load_done
from gatewaylens.capture.runner import CaptureOptions, run_capture
from gatewaylens.capture.selection import builtin_profiles, select
from gatewaylens.errors import GatewaylensError, InputError
from gatewaylens.mock.server import MockServer as _MockServer

__all__ = [
    "Analysis",
    "BadInput",
    "Behaviour",
    "Case",
    "CheckResult",
    "Corpus",
    "Exchange",
    "Finding",
    "GatewayProfile",
    "GatewayScore",
    "GatewaylensError",
    "InputError",
    "MockServer",
    "TranslationChanged",
    "analyze",
    "assert_translation",
    "capture",
    "check",
    "gateway_profiles",
    "load_corpus",
    "shipped_corpus",
    "targets",
]

#: the analyzer's older name for :class:`InputError` (the same class)
BadInput = InputError


class MockServer(_MockServer):
    """The recording mock upstream, in-process: ``async with MockServer() as mock: mock.url``.

    Binds 127.0.0.1 on a free port unless ``port`` is given; each gateway gets its own channel
    ``{mock.url}/ch/<name>``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **kw: Any) -> None:
        super().__init__(host, port, **kw)

    def channel(self, name: str) -> str:
        """The upstream base URL a gateway named ``name`` must be configured with."""
        return f"{self.url}/ch/{name}"


def shipped_corpus() -> Corpus:
    """The corpus that ships with gatewaylens (``corpus.json`` and ``corpus.d/``, merged), read from
    the installed package (or the checkout it runs from), whatever the current directory."""
    return _load_corpus_file(shipped_corpus_paths()).corpus


def load_corpus(path_or_data: str | Path | Mapping[str, Any] | Sequence[Any]) -> Corpus:
    """A corpus from a file path, or from data shaped like the file (``{"cases": [...]}`` or a
    list of cases); a bad input is an :class:`InputError` whose message is one line."""
    if isinstance(path_or_data, str | Path):
        return _load_corpus_file(Path(path_or_data)).corpus
    with tempfile.TemporaryDirectory(prefix="gatewaylens-corpus-") as tmp:
        p = Path(tmp) / "corpus.json"
        p.write_text(json.dumps(path_or_data), encoding="utf-8")
        return _load_corpus_file(p, label="corpus data").corpus


def gateway_profiles() -> dict[str, GatewayProfile]:
    """The built-in gateway profiles by name (``capture --gateways NAMES``)."""
    return builtin_profiles()


def targets(specs: Sequence[str] = (), *, builtins: str | None = None, files: Sequence[str | Path] = (),
            upstream: str = "openai") -> list[GatewayProfile]:
    """Profiles from ``--gateway``-style specs (``NAME[:KIND]=URL``), built-in names
    (``"litellm,portkey"``) and gateways files, exactly as the ``capture`` command builds them."""
    sel = select(builtins, list(specs), [Path(f) for f in files], upstream)  # type: ignore[arg-type]
    return sel.profiles


async def capture(gateways: str | Sequence[str | GatewayProfile], *, mock_url: str | None = None,
                  corpus: Corpus | str | Path | None = None, cases: Sequence[str] | None = None,
                  out: str | Path | None = None, request_timeout: float = 60.0, verbose: bool = False) -> list[Exchange]:
    """Replay corpus cases through gateways and return the exchanges, in memory.

    ``gateways``: ``--gateway``-style specs (``"mygw=http://127.0.0.1:4000"``) or profiles;
    ``mock_url``: a running mock (default: one is started for the duration, on a free port);
    ``corpus``: default the shipped one; ``cases``: case-id globs; ``out``: also keep the run
    directory there (default: a temporary one, removed); ``request_timeout``: seconds per request. No signal handlers are installed and
    nothing is printed unless ``verbose``."""
    specs = [gateways] if isinstance(gateways, str) else list(gateways)
    profiles = [p for p in specs if isinstance(p, GatewayProfile)]
    text_specs = [s for s in specs if isinstance(s, str)]
    custom = {p.name for p in profiles}
    if text_specs:
        sel = select(None, text_specs, [])
        profiles += sel.profiles
        custom |= sel.custom
    if isinstance(corpus, Corpus):
        loaded_corpus = corpus
    elif corpus is None:
        loaded_corpus = shipped_corpus()
    else:
        loaded_corpus = load_corpus(corpus)
    with tempfile.TemporaryDirectory(prefix="gatewaylens-run-") as tmp:
        corpus_file = Path(tmp) / "corpus.json"
        corpus_file.write_text(loaded_corpus.model_dump_json(exclude_none=True), encoding="utf-8")
        run_dir = Path(out) if out is not None else Path(tmp) / "run"
        mock: MockServer | None = None
        if mock_url is None:
            mock = MockServer()
            await mock.start()
            mock_url = mock.url
        try:
            opts = CaptureOptions(corpus=_load_corpus_file(corpus_file), profiles=profiles, custom=custom,
                                  mock_url=mock_url, start_mock=False, out=run_dir, timeout_s=request_timeout,
                                  cases_glob=",".join(cases) if cases else None)
            sink: Any = None if verbose else io.StringIO()
            outcome = await run_capture(opts, say=None if verbose else (lambda _line: None),
                                        stdout=sys.stdout if verbose else sink,
                                        progress=sys.stderr if verbose else sink, signals=False)
            del outcome
            return load_done(run_dir)
        finally:
            if mock is not None:
                await mock.stop()


@dataclass
class Analysis:
    """What :func:`analyze` found: leaf findings, behaviours (one per distinct thing a gateway
    does) and per-gateway scores."""

    findings: list[Finding] = field(default_factory=list)
    behaviours: list[Behaviour] = field(default_factory=list)
    scores: list[GatewayScore] = field(default_factory=list)

    def errors(self) -> list[Behaviour]:
        return [b for b in self.behaviours if b.severity == "error"]


def analyze(exchanges: Sequence[Exchange], *, families: Mapping[str, str] | None = None,
            include_kept: bool = False) -> Analysis:
    """Analyze exchanges in memory (no files written). ``families`` maps profile -> gateway family."""
    builder = BehaviourBuilder(families or {})
    agg = Aggregator()
    findings: list[Finding] = []
    for result in analyze_exchanges(exchanges, include_kept=include_kept):
        builder.add(result.findings)
        agg.add(result)
        findings.extend(Finding.model_validate(f.as_dict()) for f in result.findings)
    return Analysis(findings=findings, behaviours=builder.finish(), scores=agg.finish_scores())


def check(exchanges: Sequence[Exchange], fixtures: str | Path, known_gaps: str | Path | None = None) -> CheckResult:
    """Compare exchanges with a fixtures directory (``analyze fixtures`` output), like ``analyze check``."""
    gaps = load_known_gaps(Path(known_gaps)) if known_gaps is not None else None
    current = (fixture_of(result) for result in analyze_exchanges(exchanges, include_kept=True))
    return check_fixtures(current, load_fixtures(Path(fixtures)), gaps, gaps_name=known_gaps)


async def _selftest() -> None:  # pragma: no cover - manual smoke: python -m gatewaylens.api
    async with MockServer() as mock:
        print(mock.url)


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(_selftest())
