"""Capture: the corpus through N gateways concurrently vs one after another; capture's overhead.

Runs ``run_capture`` in this process (the client side) against the launched gateways and the mock
process.  Overhead = (a gateway's capture wall time - the sum of its exchanges' request times) /
that sum: everything capture adds around the gateway's own answer (control calls to the mock,
settling, writing).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.models import Figure, at_most, info
from gatewaylens.capture.corpus import load_corpus
from gatewaylens.capture.models import GatewayProfile
from gatewaylens.capture.rundir import load_done
from gatewaylens.capture.runner import CaptureOptions, RunOutcome, run_capture


async def _one(profiles: list[GatewayProfile], mock_url: str, corpus: Path, cases: str | None, out: Path,
               settle_ms: float, start_mock: bool = False) -> tuple[float, RunOutcome]:
    opts = CaptureOptions(corpus=load_corpus(corpus), profiles=profiles, custom=set(), mock_url=mock_url,
                          start_mock=start_mock, launch=False, out=out, cases_glob=cases, timeout_s=30.0,
                          settle_s=settle_ms / 1000, settle_max_s=max(2.0, 20 * settle_ms / 1000))
    sink = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(sink):
        outcome = await run_capture(opts, say=lambda _line: None, stdout=sink)
    return time.perf_counter() - t0, outcome


def run(profiles: list[GatewayProfile], mock_url: str, *, corpus: Path, cases: str | None, settle_ms: float,
        say: Any) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="gwl-bench-capture-") as tmp:
        root = Path(tmp)
        alone: dict[str, float] = {}
        req_ms_total = 0.0
        wall_total = 0.0
        for p in profiles:
            secs, outcome = asyncio.run(_one([p], mock_url, corpus, cases, root / f"alone-{p.name}", settle_ms))
            exs = load_done(outcome.run_dir)
            req_ms = sum(e.timings.duration_ms for e in exs if e.timings)
            n = len([e for e in exs if e.timings])
            alone[p.name] = secs
            req_ms_total += req_ms
            wall_total += secs
            over = (secs * 1000 - req_ms) / req_ms if req_ms else 0.0
            say(f"capture {p.name} alone: {secs:.2f}s for {len(exs)} exchanges, gateway request time "
                f"{req_ms / 1000:.2f}s, overhead {(secs * 1000 - req_ms) / max(n, 1):.1f} ms/exchange")
            figures.append(info(f"capture {p.name} alone", secs, "s",
                                f"{len(exs)} exchanges; capture overhead {over:.1%} "
                                f"({(secs * 1000 - req_ms) / max(n, 1):.1f} ms/exchange)"))
        if profiles:
            secs, outcome = asyncio.run(_one(profiles, mock_url, corpus, cases, root / "concurrent", settle_ms))
            slowest = max(alone, key=lambda k: alone[k])
            say(f"capture {len(profiles)} gateways concurrently: {secs:.2f}s (slowest alone: {slowest} "
                f"{alone[slowest]:.2f}s; one after another: {sum(alone.values()):.2f}s)")
            figures.append(info(f"capture {len(profiles)} gateways one after another", sum(alone.values()), "s"))
            figures.append(info(f"capture {len(profiles)} gateways concurrently", secs, "s",
                                ", ".join(p.name for p in profiles)))
            figures.append(at_most(f"capture {len(profiles)} gateways concurrently / slowest alone",
                                   secs / alone[slowest], "x", 1.3, f"slowest alone: {slowest}"))
            over = (wall_total * 1000 - req_ms_total) / req_ms_total if req_ms_total else 0.0
            figures.append(at_most("capture overhead, mock in its own process", over, "fraction", 0.10,
                                   f"--settle-ms {settle_ms:g}; all gateways, run alone"))
    return figures


def overhead_with_own_mock(profiles: list[GatewayProfile], mock_url: str, *, corpus: Path, cases: str | None,
                           settle_ms: float, say: Any) -> list[Figure]:
    """Capture's overhead when it starts the mock itself (what ``capture --launch`` does when no
    mock is running): the caller has stopped the mock process, so capture starts one in-process on
    the same port the gateways were pointed at, and reads its records without control round trips."""
    with tempfile.TemporaryDirectory(prefix="gwl-bench-capture-own-") as tmp:
        req_total = wall_total = 0.0
        for p in profiles:
            secs, outcome = asyncio.run(_one([p], mock_url, corpus, cases, Path(tmp) / p.name, settle_ms,
                                             start_mock=True))
            exs = load_done(outcome.run_dir)
            req_ms = sum(e.timings.duration_ms for e in exs if e.timings)
            n = len([e for e in exs if e.timings])
            say(f"capture {p.name} alone, mock started by capture: {secs:.2f}s, overhead "
                f"{(secs * 1000 - req_ms) / max(n, 1):.1f} ms/exchange")
            req_total += req_ms
            wall_total += secs
        over = (wall_total * 1000 - req_total) / req_total if req_total else 0.0
        return [at_most("capture overhead, mock started by capture (the default)", over, "fraction", 0.10,
                        f"--settle-ms {settle_ms:g}; all gateways, run alone")]
