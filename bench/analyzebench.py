"""Analyze throughput and peak memory at several sizes of synthetic runs, one process per size.

Each size: one process writes the synthetic run (``gatewaylens.analyze.synthetic``), a fresh
process analyzes it (``gatewaylens.analyze.pipeline.analyze_run``, what ``analyze RUN`` does)
and reports its seconds and peak RSS (``ru_maxrss``), so sizes never share a heap.

    python -m bench.analyzebench --size N --dir DIR --step write|analyze
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.models import Figure, at_least, at_most, info
from bench.procs import PY, ROOT, _env


def peak_rss_mib() -> float:
    """This process's peak RSS.  ``VmHWM`` belongs to the process image (reset by exec);
    ``ru_maxrss`` is not: on Linux it carries the parent's high-water mark across fork+exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _step(step: str, size: int, run_dir: Path) -> dict[str, Any]:
    if step == "write":
        from gatewaylens.analyze.synthetic import write_synthetic_run

        t0 = time.perf_counter()
        write_synthetic_run(run_dir, size)
        return {"seconds": time.perf_counter() - t0}
    from gatewaylens.analyze.pipeline import analyze_run

    base_rss = peak_rss_mib()
    t0 = time.perf_counter()
    res = analyze_run(run_dir)
    secs = time.perf_counter() - t0
    return {"seconds": secs, "exchanges": res.exchanges, "findings": res.findings,
            "peak_rss_mib": peak_rss_mib(), "import_rss_mib": base_rss,
            "jsonl_mib": (run_dir / "exchanges.jsonl").stat().st_size / 2**20}


def _sub(step: str, size: int, run_dir: Path, timeout: float) -> dict[str, Any]:
    res = subprocess.run([PY, "-m", "bench.analyzebench", "--step", step, "--size", str(size), "--dir", str(run_dir)],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"analyze bench {step} {size}: exit {res.returncode}: {tail[:300]}")
    out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def run(sizes: list[int], *, say: Any, timeout: float = 900) -> list[Figure]:
    figures: list[Figure] = []
    peaks: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="gwl-bench-analyze-") as tmp:
        for n in sizes:
            d = Path(tmp) / f"run-{n}"
            _sub("write", n, d, timeout)
            r = _sub("analyze", n, d, timeout)
            if r["exchanges"] != n:
                raise RuntimeError(f"analyze bench {n}: analyzed {r['exchanges']} exchanges, expected {n}")
            rate = n / r["seconds"]
            peaks[n] = r["peak_rss_mib"]
            say(f"analyze {n} exchanges: {r['seconds']:.2f}s, {rate:.0f} exchanges/s, peak RSS "
                f"{r['peak_rss_mib']:.0f} MiB (after imports {r['import_rss_mib']:.0f} MiB; JSONL {r['jsonl_mib']:.0f} MiB)")
            figures.append(at_least(f"analyze {n} exchanges: throughput", rate, "exchanges/s", 2000,
                                    f"{r['seconds']:.2f}s, {r['findings']} findings"))
            figures.append(info(f"analyze {n} exchanges: peak RSS", r["peak_rss_mib"], "MiB",
                                f"{r['import_rss_mib']:.0f} MiB after imports; input {r['jsonl_mib']:.0f} MiB"))
            shutil.rmtree(d, ignore_errors=True)
    big = sorted(peaks)
    if len(big) >= 2:
        lo, hi = big[-2], big[-1]
        figures.append(at_most(f"analyze peak memory {hi} / {lo} exchanges", peaks[hi] / peaks[lo], "x", 1.5,
                               "flat: the JSONL is streamed"))
    return figures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--step", choices=["write", "analyze"], required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--dir", type=Path, required=True)
    a = ap.parse_args()
    sys.stdout.write(json.dumps(_step(a.step, a.size, a.dir)) + "\n")


if __name__ == "__main__":
    main()
