"""Audit helper: the hand verdicts of tests/data/ground_truth (issue 11) applied to a run's findings.

    .venv/bin/python scripts/gt_audit.py RUN_DIR       # prints error-group verdict counts
The verdict table is tests/data/ground_truth/expectations.json (decided from gateway source).
"""
from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.ground_truth import family, generic_path, leaf_route, load_expectations, matches


def main(run_dir: str) -> None:
    findings = json.loads((Path(run_dir) / "findings.json").read_text())["findings"]
    exps = load_expectations()
    groups: dict[tuple[str, ...], int] = collections.Counter()
    for f in findings:
        if f["severity"] == "error":
            groups[(f["gateway"], leaf_route(f), f["direction"], generic_path(f["path"]), f["kind"],
                    f["case_id"])] += 1
    by_group: dict[tuple[str, ...], str] = {}
    for (gw, route, direction, path, kind, case), _n in groups.items():
        e = next((e for e in exps if matches(e, gw, route, direction, path, {case})), None)
        key = (family(gw) if e and e.gateway == family(gw) else gw, route, direction, path, kind)
        by_group.setdefault(key, e.verdict if e else "unjudged")
    fcount: collections.Counter[str] = collections.Counter()
    for (gw, route, direction, path, _kind, case), n in groups.items():
        e = next((e for e in exps if matches(e, gw, route, direction, path, {case})), None)
        fcount[e.verdict if e else "unjudged"] += n
    print("groups:", dict(collections.Counter(by_group.values())))
    print("findings:", dict(fcount))


if __name__ == "__main__":
    main(sys.argv[1])
