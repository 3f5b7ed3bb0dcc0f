"""Mock throughput, recording on vs off, non-stream and stream; load from another process."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.models import Figure, at_most, info
from bench.procs import MockProcess, load

CHAT_BODY: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "bench: say hi"}],
                             "max_tokens": 32}
STREAM_BODY: dict[str, Any] = {**CHAT_BODY, "stream": True, "stream_options": {"include_usage": True}}
PATH = "/ch/bench/v1/chat/completions"


@dataclass
class MockResult:
    figures: list[Figure]
    #: non-stream req/s of the recording mock (the comparison base for gateways)
    rps_record_nonstream: float


def run(*, duration: float, rounds: int, concurrency: int = 32, say: Any = print) -> MockResult:
    """Two mock processes (recording on / off) stay up; the load alternates between them each
    round, so drift (CPU frequency, other processes) hits both sides alike; medians are compared."""
    on = MockProcess(record=True, pin_cpu=0)
    off = MockProcess(record=False, pin_cpu=0)
    figures: list[Figure] = []
    base = 0.0
    try:
        for label, body in (("non-stream", CHAT_BODY), ("stream", STREAM_BODY)):
            rps: dict[str, list[float]] = {"on": [], "off": []}
            for r in range(rounds):
                order = (("off", off), ("on", on)) if r % 2 == 0 else (("on", on), ("off", off))
                for key, m in order:
                    res = load(m.url + PATH, body, concurrency=concurrency, duration=duration, pin_cpu=1)
                    if res["errors"]:
                        raise RuntimeError(f"mock {label} recording {key}: {res['errors']} errors ({res['first_error']})")
                    rps[key].append(float(res["rps"]))
            med_on, med_off = statistics.median(rps["on"]), statistics.median(rps["off"])
            say(f"mock {label}: recording on {med_on:.0f} req/s, off {med_off:.0f} req/s ({rounds} rounds)")
            figures.append(info(f"mock {label} req/s, recording on", med_on, "req/s",
                                f"median of {rounds} x {duration:g}s, {concurrency} connections"))
            figures.append(info(f"mock {label} req/s, recording off", med_off, "req/s",
                                f"median of {rounds} x {duration:g}s, {concurrency} connections"))
            cost = 1 - med_on / med_off if med_off else 1.0
            figures.append(at_most(f"mock {label}: recording cost (1 - on/off)", cost, "fraction", 0.10,
                                   f"on/off = {med_on / med_off:.3f}" if med_off else ""))
            if label == "non-stream":
                base = med_on
    finally:
        on.stop()
        off.stop()
    return MockResult(figures=figures, rps_record_nonstream=base)
