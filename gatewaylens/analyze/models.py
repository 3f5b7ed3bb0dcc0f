"""File formats of the analyze stage, each defined once: findings, verdicts and fixtures.

``findings.json`` (:class:`FindingsFile`) is the stable machine-readable output; ``analyze --schema``
prints its JSON Schema.  Path conventions of a :class:`Finding`:

* ``path`` is the client-side dotted path with list indexes (``messages[0].content``,
  ``usage.total_tokens``): in the client request for ``direction`` ``request``/``headers``, in the
  client response for ``response``/``stream``.  When the value has no client-side place (a field
  the gateway added upstream, or an upstream answer field the client never saw) it is the
  upstream-side path.
* ``to_path`` is the other (upstream) side's path: where a renamed/moved value went, where a
  changed value sits, where an added field appeared.
* ``before`` is the value before it went through the gateway (client request on the way up, the
  mock's answer on the way back), ``after`` the value after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gatewaylens.capture.models import RunInfo
from gatewaylens.dialects import Dialect, UpstreamKind
from gatewaylens.formats import VERDICT_FORMAT_VERSION, check_version, version_field

Direction = Literal["request", "response", "stream", "headers", "call", "conversation"]
Kind = Literal[
    # leaf kinds (what happened to one value)
    "kept", "renamed", "moved", "converted", "changed", "reordered", "merged", "split",
    "dropped", "added", "rejected",
    # stream grammar (a client-side frame sequence that breaks its dialect's grammar)
    "malformed",
    # call level (the exchange as a whole)
    "retried", "duplicated_call", "answered_without_upstream", "model_substituted", "leaked",
]
Severity = Literal["info", "warn", "error"]

KINDS: tuple[Kind, ...] = (
    "kept", "renamed", "moved", "converted", "changed", "reordered", "merged", "split", "dropped", "added",
    "rejected", "malformed", "retried", "duplicated_call", "answered_without_upstream", "model_substituted", "leaked",
)
KIND_HELP: dict[str, str] = {
    "kept": "same value at the same place",
    "renamed": "same value under another key at the same level (max_tokens -> max_completion_tokens)",
    "moved": "same value elsewhere in the tree (system -> messages[0].content)",
    "converted": "same meaning in another form or place: an encoding (base64 <-> data URL, JSON object <-> "
                 "JSON string), an enum or unit map the dialect table knows (finish reasons, tool_choice modes, "
                 "reasoning effort <-> thinking budget), an id under another key; before/after and both paths",
    "changed": "another value or type at the same (or the translated) place: a clamp, a coercion, an edit",
    "reordered": "the same list items in another order (one finding for the list, not one per item)",
    "merged": "several client items (messages, blocks) sent upstream as one",
    "split": "one client item sent upstream as several",
    "dropped": "not carried across at all",
    "added": "present only after the gateway (an injected default, a block the upstream never sent)",
    "rejected": "the gateway answered 4xx without calling the upstream and its error names the field",
    "malformed": "the client's stream breaks its dialect's grammar where the upstream's did not; path "
                 "`grammar.<code>` (gatewaylens/streamgrammar.py CODES), the frame index in `after` and the message",
    "retried": "the gateway called the upstream again after a failed call",
    "duplicated_call": "the gateway called the upstream again after a successful call",
    "answered_without_upstream": "the client got an answer although the upstream was never called",
    "model_substituted": "the model the upstream received (`(call).model`: not the route's model or its "
                         "declared alias) or the client was told (`(response).model`: neither the upstream's "
                         "nor the requested one) is not the expected one",
    "leaked": "the client received gateway internals: a stack trace, server file paths",
}
SEVERITIES: tuple[Severity, ...] = ("info", "warn", "error")
#: 2: `converted`/`reordered`/... kinds, `behaviours`, severity by effect (see README).
FINDINGS_FORMAT_VERSION = 2
FIXTURE_FORMAT_VERSION = 2


class Finding(BaseModel):
    """What a gateway did to one field of one exchange, on one side."""

    gateway: str
    case_id: str
    dialect: Dialect = Field(description="the client's dialect")
    stream: bool
    upstream: UpstreamKind = Field(description="the upstream provider shape the exchange targeted")
    direction: Direction
    kind: Kind
    path: str = Field(description="client-side dotted path (upstream path when there is no client-side place)")
    to_path: str | None = Field(None, description="the upstream side's path for renames, moves, changes, additions")
    before: Any | None = Field(None, description="value before the gateway (client request / mock answer)")
    after: Any | None = Field(None, description="value after the gateway (upstream request / client response)")
    severity: Severity
    message: str
    exchange_id: str = ""
    variant: str = ""
    upstream_index: int | None = Field(None, description="index of the upstream call (retries make several)")
    concept: str | None = Field(None, description="dialect equivalence concept, when the table knows the field")
    behaviour: str = Field("", description="id of the behaviour (findings.json `behaviours`) this finding belongs to")
    expectation: str | None = Field(None, description="the case expectation that escalated or downgraded it")
    turn: int | None = Field(None, description="turn number of a conversation case (1-based); None for a plain case")


@dataclass(slots=True)
class FindingRow:
    """In-memory form of a :class:`Finding` (same fields, same order) used on the hot path: a slots
    dataclass costs a microsecond where a pydantic model costs ten.  Written rows are validated
    by :class:`FindingsFile` when the file is read back; a test keeps both field lists equal."""

    gateway: str
    case_id: str
    dialect: Dialect
    stream: bool
    upstream: UpstreamKind
    direction: Direction
    kind: Kind
    path: str
    to_path: str | None
    before: Any
    after: Any
    severity: Severity
    message: str
    exchange_id: str = ""
    variant: str = ""
    upstream_index: int | None = None
    concept: str | None = None
    behaviour: str = ""
    expectation: str | None = None
    turn: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway, "case_id": self.case_id, "dialect": self.dialect, "stream": self.stream,
            "upstream": self.upstream, "direction": self.direction, "kind": self.kind, "path": self.path,
            "to_path": self.to_path, "before": self.before, "after": self.after, "severity": self.severity,
            "message": self.message, "exchange_id": self.exchange_id, "variant": self.variant,
            "upstream_index": self.upstream_index, "concept": self.concept,
            "behaviour": self.behaviour, "expectation": self.expectation, "turn": self.turn,
        }

    def to_model(self) -> Finding:
        return Finding(**self.as_dict())


class StreamSummary(BaseModel):
    """Both sides of one streamed exchange, reduced to what a reader compares."""

    upstream_dialect: Dialect | None = None
    upstream_frames: int = 0
    client_frames: int = 0
    upstream_text_chars: int = 0
    client_text_chars: int = 0
    text_equal: bool = False
    upstream_usage: dict[str, int] | None = None
    client_usage: dict[str, int] | None = None
    usage_equal: bool = False
    upstream_finish: str | None = None
    client_finish: str | None = None
    finish_mapped: bool = False
    terminal: bool = Field(False, description="the client stream ends with its dialect's terminal marker")
    upstream_cut: bool = False
    upstream_event_types: list[str] = Field(default_factory=list)
    client_event_types: list[str] = Field(default_factory=list)


class ExchangeSummary(BaseModel):
    """One line per exchange in findings.json: outcome and score, without the findings."""

    id: str
    gateway: str
    case_id: str
    dialect: Dialect
    stream: bool
    upstream: UpstreamKind
    variant: str = ""
    status: Literal["ok", "error", "unsupported"]
    client_status: int | None = None
    upstream_calls: int = 0
    outcome: Literal["translated", "rejected", "no_upstream_call", "capture_error", "unsupported"]
    score: float | None = Field(None, description="exchange fidelity 0..100; None for unsupported")
    counts: dict[str, int] = Field(default_factory=dict, description="findings per kind (kept excluded)")
    error: str | None = None
    stream_summary: StreamSummary | None = None
    conversation: str | None = Field(None, description="conversation id shared by the turns of one conversation")
    turn: int | None = None
    turns: int | None = None


class GatewayScore(BaseModel):
    """Per-gateway counts and fidelity score of an analysis."""

    gateway: str
    exchanges: int = 0
    translated: int = 0
    rejected: int = 0
    no_upstream_call: int = 0
    capture_errors: int = 0
    unsupported: int = 0
    client_non_2xx: int = 0
    findings: dict[str, int] = Field(default_factory=dict, description="per kind, kept excluded")
    severities: dict[str, int] = Field(default_factory=dict)
    fidelity: float | None = Field(None, description="mean exchange score, 0..100 (see README)")


class AnalyzerInfo(BaseModel):
    version: int = FINDINGS_FORMAT_VERSION
    tool_version: str
    include_kept: bool
    exchanges: int
    skipped_lines: int = 0
    warnings: list[str] = Field(default_factory=list)


class BehaviourExample(BaseModel):
    case_id: str
    exchange_id: str
    path: str
    to_path: str | None = None
    before: Any | None = None
    after: Any | None = None


class Behaviour(BaseModel):
    """One thing a gateway does, however many leaves and exchanges show it: one entry per distinct
    (gateway family, route, direction, generic path, kind, severity)."""

    id: str = Field(description="stable id: b-<12 hex> of the key fields")
    gateway: str = Field(description="the gateway family (profiles of one gateway share behaviours)")
    profiles: list[str] = Field(description="the gateway profiles it was seen in")
    route: str = Field(description="client dialect -> upstream kind [/variant], e.g. 'messages->openai'")
    dialect: Dialect
    upstream: UpstreamKind
    variant: str = ""
    direction: Direction
    path: str = Field(description="generic path: list indexes written [*]")
    to_path: str | None = Field(None, description="generic path on the other side")
    kind: Kind
    severity: Severity
    message: str
    concept: str | None = None
    cases: list[str] = Field(default_factory=list)
    exchanges: list[str] = Field(default_factory=list)
    count: int = Field(0, description="leaf findings that belong to it")
    example: BehaviourExample | None = None
    expectation: str | None = None


class FindingsFile(BaseModel):
    """``findings.json``."""

    format_version: int = version_field(FINDINGS_FORMAT_VERSION, "findings.json")
    run: RunInfo
    analyzer: AnalyzerInfo
    behaviours: list[Behaviour] = Field(default_factory=list)
    findings: list[Finding]
    exchanges: list[ExchangeSummary] = Field(default_factory=list)
    scores: list[GatewayScore] = Field(default_factory=list)

    @field_validator("format_version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> int:
        # every findings.json ever written carries one; version 1 predates behaviours
        return check_version(v, FINDINGS_FORMAT_VERSION, "findings.json", missing_ok=False)


# --------------------------------------------------------------------------------------------
# Verdicts: what an AI reviewer returns for one case (the prompt embeds this schema).
# --------------------------------------------------------------------------------------------


class VerdictIssue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="dotted path of the field concerned, as in the findings")
    severity: Severity
    comment: str = Field(min_length=1, description="what is wrong and why it matters, one or two sentences")
    finding: Literal["agree", "disagree", "new"] = Field(
        description="agree/disagree with a deterministic finding on this path, or a new issue it missed"
    )


class GatewayVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gateway: str
    upstream: UpstreamKind | None = Field(None, description="the upstream kind judged; null: all of them")
    verdict: Literal["faithful", "acceptable", "lossy", "broken"]
    summary: str = Field(min_length=1, description="one paragraph")
    issues: list[VerdictIssue] = Field(default_factory=list)


class Verdict(BaseModel):
    """An AI reviewer's judgement of one case across gateways."""

    model_config = ConfigDict(extra="forbid")
    format_version: int = version_field(VERDICT_FORMAT_VERSION, "a verdict file (may be left out)")
    case_id: str
    reviewer: str = Field("", description="who or what reviewed (model name)")
    gateways: list[GatewayVerdict] = Field(min_length=1)

    @field_validator("format_version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> int:
        return check_version(v, VERDICT_FORMAT_VERSION, "verdict")


# --------------------------------------------------------------------------------------------
# Fixtures: the behaviours of one (gateway, case, upstream, variant), volatile values masked.
# --------------------------------------------------------------------------------------------


class FixtureExample(BaseModel):
    """One leaf of the exchange that shows the behaviour, volatile values masked."""

    model_config = ConfigDict(extra="forbid")
    path: str
    to_path: str | None = None
    before: Any | None = None
    after: Any | None = None
    upstream_index: int | None = None


class FixtureBehaviour(BaseModel):
    """One behaviour of one exchange: its leaves folded by (direction, generic path, kind, severity)."""

    model_config = ConfigDict(extra="forbid")
    direction: Direction
    path: str = Field(description="generic path: list indexes written [*]")
    kind: Kind
    severity: Severity
    to_path: str | None = Field(None, description="generic path on the other side")
    count: int = Field(1, description="leaves of this exchange that show it")
    example: FixtureExample


class FixtureOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["ok", "error", "unsupported"]
    outcome: Literal["translated", "rejected", "no_upstream_call", "capture_error", "unsupported"]
    client_status: int | None = None
    upstream_calls: int = 0


class FixtureBug(BaseModel):
    """For a case of the reported-bug pack: whether this exchange reproduces the bug."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(description="the bug report's URL (the case's source)")
    reproduced: bool
    evidence: str | None = Field(None, description="the finding that violates the case's expectation")


class Fixture(BaseModel):
    """A normalized, diff-friendly translation map with volatile values masked."""

    model_config = ConfigDict(extra="forbid")
    fixture_version: int = FIXTURE_FORMAT_VERSION
    gateway: str
    case_id: str
    dialect: Dialect
    stream: bool
    upstream: UpstreamKind
    variant: str = ""
    turn: int | None = Field(None, description="turn of a conversation case (1-based); absent for a plain case")
    reported_bug: FixtureBug | None = Field(None, description="a reported-bug case: reproduced or not")
    outcome: FixtureOutcome
    behaviours: list[FixtureBehaviour]

    def key(self) -> tuple[str, str, str, str]:
        """(gateway, case, upstream, variant); a conversation turn's case reads ``<case>#t<N>``."""
        case = self.case_id if self.turn is None else f"{self.case_id}#t{self.turn}"
        return (self.gateway, case, self.upstream, self.variant)


# --------------------------------------------------------------------------------------------
# Known gaps: behaviours a gateway accepts; ``analyze check --known-gaps FILE`` does not fail on them.
# --------------------------------------------------------------------------------------------

KNOWN_GAPS_FORMAT_VERSION = 1


class KnownGap(BaseModel):
    """One accepted behaviour, keyed like a behaviour minus its severity (a severity change of an
    accepted gap stays accepted; a new path or kind does not); or, with ``bug``, a reported bug the
    gateway is known to still have (its "reproduced" does not fail the build)."""

    model_config = ConfigDict(extra="forbid")
    gateway: str = Field(description="gateway profile name, as in the fixtures")
    bug: str | None = Field(None, description="a reported bug: its URL (the case's source) or owner/repo#N")
    route: str | None = Field(None, description="client dialect -> upstream kind [/variant], e.g. 'chat->anthropic'")
    direction: Direction | None = None
    path: str | None = Field(None, description="generic path: list indexes written [*]")
    kind: Kind | None = None
    reason: str = Field("", description="why it is accepted (free text)")

    @model_validator(mode="after")
    def _keyed(self) -> KnownGap:
        if self.bug is None and None in (self.route, self.direction, self.path, self.kind):
            raise ValueError("a known gap names either a bug, or route, direction, path and kind")
        return self

    def names_bug(self, source: str) -> bool:
        if self.bug is None:
            return False
        m = re.search(r"github\.com/([^/]+/[^/]+)/(?:issues|pull)/(\d+)", source)
        return self.bug == source or (m is not None and self.bug == f"{m.group(1)}#{m.group(2)}")


class KnownGaps(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format_version: int = KNOWN_GAPS_FORMAT_VERSION
    gaps: list[KnownGap] = Field(default_factory=list)

    def accepts(self, gateway: str, route: str, direction: str, path: str, kind: str) -> bool:
        return any(g.bug is None and g.gateway == gateway and g.route == route and g.direction == direction
                   and g.path == path and g.kind == kind for g in self.gaps)

    def accepts_bug(self, gateway: str, source: str) -> bool:
        return any(g.gateway == gateway and g.names_bug(source) for g in self.gaps)


# --------------------------------------------------------------------------------------------
# The result of ``analyze check --json`` (and of :func:`gatewaylens.check`, as data).
# --------------------------------------------------------------------------------------------

CHECK_RESULT_FORMAT_VERSION = 1


class CheckTestcase(BaseModel):
    name: str = Field(description="gateway/case[upstream/variant], as the JUnit testcase is named")
    lines: list[str] = Field(default_factory=list, description="its REGRESSION/CHANGED/IMPROVED/KNOWN lines")


class CheckResultFile(BaseModel):
    """``analyze check --json``: the comparison of a run with its fixtures."""

    model_config = ConfigDict(extra="forbid")
    format_version: int = version_field(CHECK_RESULT_FORMAT_VERSION, "the check result")
    ok: bool = Field(description="no regression")
    compared: int
    regressions: list[str] = Field(default_factory=list)
    changes: list[str] = Field(default_factory=list)
    improvements: list[str] = Field(default_factory=list)
    known: list[str] = Field(default_factory=list, description="regressions accepted by the known-gaps file")
    warnings: list[str] = Field(default_factory=list)
    testcases: list[CheckTestcase] = Field(default_factory=list)

    @field_validator("format_version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> int:
        return check_version(v, CHECK_RESULT_FORMAT_VERSION, "check result")

