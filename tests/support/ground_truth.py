"""Ground-truth expectations for real-gateway runs (issue 11 items 5 and 6).

``tests/data/ground_truth/expectations.json`` is a list of :class:`Expectation`: what a real
gateway does with one concept on one route, decided from the gateway's own installed source
(``source`` names file, line and version) or from recorded traffic.  ``expect`` is the severity
the analyzer must report; ``absent`` means it must not be reported as warn or error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from gatewaylens.analyze.models import Direction, Kind

Expect = Literal["error", "warn", "info", "absent"]
Verdict = Literal["true", "false", "misleading", "missed", "setup"]

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "ground_truth"
EXPECTATIONS_FILE = DATA_DIR / "expectations.json"
_INDEX = re.compile(r"\[\d+\]")


class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gateway: str = Field(description="gateway family (profiles of one gateway share it)")
    route: str = Field(description="client dialect -> upstream kind [/variant], e.g. 'messages->openai'")
    case_id: str | None = Field(None, description="null: any case on that route")
    direction: Direction
    path: str = Field(description="generic client-side path, list indexes written [*]")
    expect: Expect
    kind: Kind | None = Field(None, description="the kind it should have in the v2 vocabulary")
    verdict: Verdict = Field(description="what the current analyzer's finding was: true/false/misleading, "
                                         "missed (not reported), setup (an artefact of our setup)")
    source: str = Field(description="<file>:<line> @<gateway version>, or the recorded exchange")
    why: str = Field(min_length=1)


EXPECTATIONS = TypeAdapter(list[Expectation])


def load_expectations(path: Path = EXPECTATIONS_FILE) -> list[Expectation]:
    return EXPECTATIONS.validate_json(path.read_bytes())


def generic_path(path: str) -> str:
    return _INDEX.sub("[*]", path)


def family(gateway: str) -> str:
    """Profile name -> gateway family (``litellm-chat`` is a profile of ``litellm``)."""
    return "litellm" if gateway.startswith("litellm") else gateway


def leaf_route(f: dict[str, Any]) -> str:
    return f"{f['dialect']}->{f['upstream']}" + (f"/{f['variant']}" if f.get("variant") else "")


def matches(e: Expectation, gateway: str, route: str, direction: str, path: str, cases: set[str]) -> bool:
    return (e.gateway in (gateway, family(gateway)) and route == e.route and direction == e.direction
            and path == e.path and (e.case_id is None or e.case_id in cases))


def met_by_leaves(e: Expectation, findings: list[dict[str, Any]]) -> bool:
    """Does the current (v1, leaf) output meet ``e``?  Leaves grouped by generic path."""
    hits = [f for f in findings
            if matches(e, f["gateway"], leaf_route(f), f["direction"], generic_path(f["path"]), {f["case_id"]})]
    return _meets(e, [(f["kind"], f["severity"]) for f in hits])


def met_by_behaviours(e: Expectation, behaviours: list[dict[str, Any]]) -> bool:
    hits = [b for b in behaviours
            if any(matches(e, p, b["route"], b["direction"], b["path"], set(b.get("cases", [])))
                   for p in [b["gateway"], *b.get("profiles", [])])]
    return _meets(e, [(b["kind"], b["severity"]) for b in hits])


def _meets(e: Expectation, hits: list[tuple[str, str]]) -> bool:
    loud = [h for h in hits if h[1] in ("warn", "error")]
    if e.expect == "absent":
        return not loud
    want = [h for h in hits if h[1] == e.expect and (e.kind is None or h[0] == e.kind)]
    return bool(want)


def dump(items: list[Expectation]) -> str:
    return json.dumps([i.model_dump() for i in items], indent=1, ensure_ascii=False) + "\n"
