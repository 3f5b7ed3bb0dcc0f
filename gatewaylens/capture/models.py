"""File formats written by capture: the corpus case, the gateway profile, the exchange and the run."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gatewaylens.dialects import Dialect, UpstreamKind
from gatewaylens.formats import (
    CORPUS_FORMAT_VERSION,
    EXCHANGE_FORMAT_VERSION,
    RUN_FORMAT_VERSION,
    check_version,
    version_field,
)
from gatewaylens.mock.models import RecordedExchange, ScriptStep, SSEFrame

_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
#: RFC 9110 token: what a header name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}")
#: A header value capture can send: printable ASCII, spaces and tabs (no CR/LF/NUL, which would
#: split the request, and nothing the HTTP client cannot encode).
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """Headers that can be sent as given: a bad one fails validation (one line, before any traffic)
    instead of every exchange at send time."""
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"header name {name[:60]!r} is not a valid HTTP header name")
        if not _HEADER_VALUE.fullmatch(value):
            bad = next(c for c in value if not _HEADER_VALUE.fullmatch(c))
            what = "CR or LF" if bad in "\r\n" else "NUL" if bad == "\0" else f"character {bad!r}"
            raise ValueError(f"header {name[:60]!r}: the value holds {what}; header values must be printable ASCII")
    return headers


ExpectMust = Literal["honour", "convert", "reject_ok", "must_not_drop", "must_not_add", "must_not_change", "may_drop"]


class Expectation(BaseModel):
    """What a faithful gateway must do with one concept or field of a case.

    ``must``:

    * ``honour``: the value must reach the other side with its meaning (kept, renamed, moved or
      converted); dropping or changing it is an ``error``, a 4xx naming it is a ``warn``.
    * ``convert``: across dialects the value must be written in the target's own form
      (converted/renamed/moved); kept verbatim where the target has another name is an ``error``.
    * ``reject_ok``: a 4xx naming the field without calling the upstream is acceptable (``info``);
      a silent drop is an ``error``.
    * ``must_not_drop``: any drop is an ``error``.
    * ``must_not_add``: anything added there is an ``error`` (an injected field).
    * ``must_not_change``: any change of value is an ``error``.
    * ``may_drop``: dropping is acceptable (``info``): the target dialect has no such thing.

    A finding that contradicts the expectation is escalated to ``severity`` (default ``error``);
    one that meets it is downgraded to ``info``.  The finding records which expectation did it.
    """

    model_config = ConfigDict(extra="forbid")
    concept: str | None = Field(None, description="an equivalence-table concept, e.g. 'max output tokens'")
    path: str | None = Field(None, description="client-side path; `[*]` matches any list index; a prefix matches its subtree")
    direction: Literal["request", "response", "stream", "headers"] = "request"
    upstream: UpstreamKind | None = Field(None, description="only exchanges to this upstream kind (default: both)")
    must: ExpectMust
    severity: Literal["info", "warn", "error"] = "error"
    note: str = ""

    @model_validator(mode="after")
    def _target(self) -> Expectation:
        if (self.concept is None) == (self.path is None):
            raise ValueError("give exactly one of concept or path")
        return self

    def label(self) -> str:
        return f"{self.must} {self.concept or self.path}"


class Turn(BaseModel):
    """One client request of a conversation case.  Turn 1 is a plain request; a later turn's body is
    a template that :mod:`gatewaylens.turns` fills from what the client received on earlier turns
    (``{"$ref": "prev.<path>"}``, ``{"$splice": "prev.<path>"}``, ``"{{prev.<path>}}"``)."""

    model_config = ConfigDict(extra="forbid")
    body: dict[str, Any] = Field(description="the client request (a template from turn 2 on)")
    script: list[ScriptStep] | None = Field(None, description="scripted mock answers for this turn")
    note: str = Field("", description="what this turn probes")


class Case(BaseModel):
    """One corpus case: a client request, gateway-agnostic, in one dialect; or, with ``turns``, a
    conversation of several requests sent in order through the same gateway."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="unique slug: lower-case letters, digits, '.', '_' and '-'")
    dialect: Dialect
    stream: bool = Field(strict=True, description="true or false (no \"yes\", 1 or \"true\")")
    body: dict[str, Any] = Field(default_factory=dict,
                                 description="the client request exactly as a client would send it (a "
                                             "conversation: turn 1's body, filled from `turns`)")
    note: str = Field(min_length=1, description="what the case probes")
    upstream: list[UpstreamKind] | None = Field(
        None, description="provider shapes to run against; default: both openai and anthropic"
    )
    headers: dict[str, str] = Field(default_factory=dict)
    script: list[ScriptStep] | None = Field(None, description="scripted mock answers for this case")
    tags: list[str] = Field(default_factory=list)
    expect: list[Expectation] = Field(default_factory=list, description="what a faithful gateway must do (see Expectation)")
    source: str | None = Field(None, description="URL of the public bug report the case reproduces")
    summary: str | None = Field(None, description="one-line summary of the reported bug")
    turns: list[Turn] | None = Field(None, description="a conversation: the client requests in order (at least 2), "
                                     "each later one built from what the client received before")

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError("must be a slug: lower-case letters, digits, '.', '_', '-'")
        return v

    @field_validator("upstream", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("headers")
    @classmethod
    def _sendable_headers(cls, v: dict[str, str]) -> dict[str, str]:
        return check_headers(v)

    @field_validator("body")
    @classmethod
    def _strict_body_stream(cls, v: dict[str, Any]) -> dict[str, Any]:
        if "stream" in v and v["stream"] is not None and not isinstance(v["stream"], bool):
            raise ValueError(f"body.stream must be true or false, got {v['stream']!r}"[:200])
        return v

    @model_validator(mode="after")
    def _stream_agrees(self) -> Case:
        if self.turns is not None:
            self._fill_from_turns()
        elif "body" not in self.model_fields_set:
            raise ValueError("body: field required (or give turns)")
        if bool(self.body.get("stream", False)) != self.stream:
            raise ValueError(f"stream is {str(self.stream).lower()} but body.stream is {self.body.get('stream')!r}")
        for i, t in enumerate(self.turns or []):
            if i and "stream" in t.body and bool(t.body["stream"]) != self.stream:
                raise ValueError(f"turns[{i}].body.stream: every turn streams like the case "
                                 f"(stream is {str(self.stream).lower()})")
        return self

    def _fill_from_turns(self) -> None:
        """Turn 1 is the case's own request: ``body`` and ``script`` come from ``turns[0]`` (given
        again, as in a run's corpus copy, they must be equal to it)."""
        assert self.turns is not None
        if len(self.turns) < 2:
            raise ValueError("turns: a conversation has at least 2 turns (a single request is a plain case)")
        first = self.turns[0]
        if "body" in self.model_fields_set and self.body and self.body != first.body:
            raise ValueError("body: give turns[0].body or body, not both")
        if self.script is not None and first.script is not None and self.script != first.script:
            raise ValueError("script: give per-turn scripts in turns, not a case script")
        self.body = first.body
        if first.script is not None:
            self.script = first.script

    @property
    def conversation(self) -> bool:
        return bool(self.turns)

    def turn_count(self) -> int:
        return len(self.turns) if self.turns else 1

    def upstreams(self) -> list[UpstreamKind]:
        return list(self.upstream) if self.upstream else ["openai", "anthropic"]


class Corpus(BaseModel):
    """A corpus file: the cases capture replays through each gateway."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(CORPUS_FORMAT_VERSION, description=f"corpus format version; this gatewaylens reads {CORPUS_FORMAT_VERSION}")
    description: str = ""
    cases: list[Case]

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> int:
        return check_version(v, CORPUS_FORMAT_VERSION, "corpus", field="version")


# --------------------------------------------------------------------------------------------
# Gateway profiles
# --------------------------------------------------------------------------------------------


class Route(BaseModel):
    """How a client reaches the gateway in one dialect so that it calls one kind of upstream.

    String values may use ``{channel_url}`` (this gateway's mock channel, e.g.
    ``http://127.0.0.1:9999/ch/portkey``) and ``{mock_url}``.
    """

    model_config = ConfigDict(extra="forbid")
    dialect: Dialect
    upstream: UpstreamKind
    path: str = Field(description="path on the gateway, e.g. /v1/chat/completions")
    model: str | None = Field(None, description="model name to send; None: the case's own model")
    tag_models: dict[str, str] = Field(
        default_factory=dict,
        description="case tag -> model name to send instead of `model` for cases with that tag (a case "
                    "that needs a capability must reach the gateway with a model that has it)")
    headers: dict[str, str] = Field(default_factory=dict)
    passthrough: bool = Field(False, description="a passthrough route: the upstream body must equal the client body")
    variant: str = Field("", description="label for a second route of the same dialect/upstream")

    @field_validator("headers")
    @classmethod
    def _sendable_headers(cls, v: dict[str, str]) -> dict[str, str]:
        return check_headers(v)


HeaderPolicyName = Literal["forward", "may_replace", "must_add", "must_not_forward"]


class HeaderRule(BaseModel):
    """One row of a header policy (README "Header policy"): what a faithful gateway does with a
    header on its way to one kind of upstream.  A profile's rules extend (and override) the
    built-in table in ``gatewaylens/analyze/headers.py``.

    ``policy``: ``forward`` (the client's value must reach the upstream unchanged), ``may_replace``
    (the gateway may send its own value), ``must_add`` (the upstream needs it: the gateway sends
    one even if the client did not), ``must_not_forward`` (the gateway's own control headers,
    hop-by-hop headers, the other provider's headers: forwarding one is the finding, dropping it is
    not).  ``severity``: of a breach of the rule (default: the table's)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="lower-case header name, or a glob such as `x-portkey-*`")
    policy: HeaderPolicyName
    upstream: UpstreamKind | None = Field(None, description="only towards this upstream kind; default: both")
    severity: Literal["info", "warn", "error"] | None = None
    note: str = ""


class Unsupported(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dialect: Dialect
    upstream: UpstreamKind
    reason: str


class GatewayProfile(BaseModel):
    """Everything gatewaylens knows about addressing, configuring and launching one gateway."""

    model_config = ConfigDict(extra="forbid")
    name: str
    family: str | None = Field(None, description="the gateway this profile configures (profiles of one gateway "
                               "share behaviours); default: the name")
    title: str = ""
    homepage: str = ""
    base_url: str = Field(description="where the gateway listens by default")
    routes: list[Route]
    unsupported: list[Unsupported] = Field(default_factory=list)
    upstream_only: UpstreamKind | None = Field(
        None, description="the one upstream kind this gateway is configured for (a --gateway NAME[:KIND]=URL): "
                          "cases meant for the other kind are not run, and said once, instead of one "
                          "'unsupported' exchange each")
    client_headers: dict[str, str] = Field(default_factory=dict, description="headers sent on every request (gateway auth)")
    image: str | None = Field(None, description="pinned container image")
    install: str = Field("", description="how the project installs it (make target / script)")
    launcher: str | None = Field(None, description="name of the local-process launcher, see capture/launch.py")
    version: str | None = None
    notes: str = ""
    model_aliases: dict[str, str] = Field(
        default_factory=dict,
        description="client model name -> the model the gateway's own configuration sends upstream for it "
                    "(LiteLLM's model_list, claude-code-router's `provider,model`): that substitution is on purpose")
    header_policy: list[HeaderRule] = Field(
        default_factory=list, description="header rules that extend or override the built-in header policy")

    @field_validator("client_headers")
    @classmethod
    def _sendable_headers(cls, v: dict[str, str]) -> dict[str, str]:
        return check_headers(v)

    def route_for(self, dialect: Dialect, upstream: UpstreamKind) -> list[Route]:
        return [r for r in self.routes if r.dialect == dialect and r.upstream == upstream]

    def unsupported_reason(self, dialect: Dialect, upstream: UpstreamKind) -> str | None:
        for u in self.unsupported:
            if u.dialect == dialect and u.upstream == upstream:
                return u.reason
        if not self.route_for(dialect, upstream):
            return f"{self.name} has no route for {dialect} client requests to an {upstream} upstream"
        return None


class GatewaysFile(BaseModel):
    """``--gateways-file``: user-defined gateways."""

    model_config = ConfigDict(extra="forbid")
    gateways: list[GatewayProfile]


# --------------------------------------------------------------------------------------------
# Exchanges and runs
# --------------------------------------------------------------------------------------------


class ClientRequest(BaseModel):
    method: str = "POST"
    url: str = Field(description="full URL, credentials in the query redacted")
    headers: dict[str, str] = Field(default_factory=dict, description="redacted with the mock's rules")
    body: Any = Field(description="the JSON body exactly as sent")


class ClientFrame(SSEFrame):
    json_data: Any | None = Field(None, description="data parsed as JSON when it is JSON")


class ClientResponse(BaseModel):
    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any | None = Field(None, description="JSON body, or None for streams / non-JSON")
    text: str | None = Field(None, description="raw body text when it is not JSON")
    frames: list[ClientFrame] | None = Field(None, description="every SSE frame in order, for streams")
    stream: bool = False


class ExchangeError(BaseModel):
    kind: Literal["timeout", "refused", "http", "broken_stream", "protocol", "mock_lost", "internal", "disturbed",
                  "interrupted"] = Field(description="disturbed: another client reset the mock channel during the "
                                         "exchange or sent traffic on it (records of another case); interrupted: "
                                         "capture was stopped (SIGINT/SIGTERM) while the exchange was in flight")
    message: str


class Timings(BaseModel):
    started: datetime
    duration_ms: float = 0.0
    first_byte_ms: float | None = None


class TurnRef(BaseModel):
    """How a conversation turn was built: one reference of its template and what filled it."""

    at: str = Field(description="place in the client request body, e.g. messages[2].tool_call_id")
    ref: str = Field(description="the reference, e.g. prev.choices[0].message.tool_calls[0].id")
    how: Literal["ref", "splice", "text"] = "ref"
    value: Any | None = Field(None, description="the value put there (what the client had received)")


class Exchange(BaseModel):
    """One case sent through one gateway in one dialect against one upstream kind, whole.  A turn of a
    conversation case is one exchange; ``conversation`` and ``turn`` link the turns."""

    format_version: int = version_field(EXCHANGE_FORMAT_VERSION, "an exchanges.jsonl record")
    id: str = Field(description="<gateway>/<case_id>/<upstream>[/<variant>], + /t<N> for turn N of a conversation")
    case_id: str
    gateway: str
    dialect: Dialect
    stream: bool
    upstream: UpstreamKind
    variant: str = ""
    passthrough: bool = False
    status: Literal["ok", "error", "unsupported"] = "ok"
    unsupported_reason: str | None = None
    client_request: ClientRequest | None = None
    upstream_requests: list[RecordedExchange] = Field(default_factory=list)
    client_response: ClientResponse | None = None
    timings: Timings | None = None
    error: ExchangeError | None = None
    notes: list[str] = Field(default_factory=list)
    conversation: str | None = Field(None, description="conversation id (the exchange id without /t<N>), "
                                     "shared by every turn of one conversation through one gateway")
    turn: int | None = Field(None, ge=1, description="1-based turn number within the conversation")
    turns: int | None = Field(None, ge=1, description="how many turns the conversation has")
    built_from: list[TurnRef] = Field(default_factory=list,
                                      description="turn 2 on: what each reference of the template was replaced with")
    expected_model: str | None = Field(
        None, description="the model the gateway is configured to send upstream for the client's model "
                          "(GatewayProfile.model_aliases); None: the client's own model")
    header_policy: list[HeaderRule] = Field(default_factory=list, description="the profile's header rules")

    @field_validator("format_version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> int:
        return check_version(v, EXCHANGE_FORMAT_VERSION, "exchanges.jsonl")


class GatewayInfo(BaseModel):
    name: str
    family: str | None = None
    base_url: str
    channel_url: str
    version: str | None = None
    #: How a from-source binary was built (version source, commit, Go version); None when installed.
    build: str | None = None
    launched: Literal["no", "local", "docker"] = "no"
    skipped: str | None = None
    #: cases not run because the gateway was declared with one upstream kind (GatewayProfile.upstream_only)
    not_run: str | None = None


class RunInfo(BaseModel):
    """``run.json``."""

    format_version: int = version_field(RUN_FORMAT_VERSION, "run.json")
    id: str
    started: datetime
    finished: datetime | None = None
    tool_version: str
    corpus_path: str
    corpus_sha256: str
    mock_url: str
    gateways: list[GatewayInfo]
    options: dict[str, Any] = Field(default_factory=dict)
    interrupted: bool = False
    counts: dict[str, int] = Field(default_factory=dict)

    @field_validator("format_version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> int:
        return check_version(v, RUN_FORMAT_VERSION, "run.json")
