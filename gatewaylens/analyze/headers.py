"""Header policy: which client headers a faithful gateway forwards, may replace, must add or must
not forward, per upstream kind, and the severity of breaking each rule (README "Header policy").

=========================================  ==================  =================  ==========================================
header                                     towards             policy             breach (severity)
=========================================  ==================  =================  ==========================================
``anthropic-version``                      anthropic           must add           missing upstream (error: Anthropic answers
                                                                                  400 without it); rewritten (info)
``anthropic-beta``                         anthropic           forward            a client flag lost (warn); flags added (info)
``openai-beta``, ``openai-organization``,  openai              forward            dropped or rewritten (warn)
``openai-project``
``traceparent``, ``tracestate``,           both                forward            dropped or rewritten (info)
``x-request-id``, ``idempotency-key``
client ``x-*`` metadata                    both                forward            dropped or rewritten (info)
``user-agent``                             both                may replace        replaced or dropped (info)
credentials (``authorization``,            both                must add           none upstream (warn); the client's own key
``x-api-key``, ``api-key``)                                                       forwarded verbatim (warn); replaced by the
                                                                                  gateway's key: no finding
the other provider's headers               openai: anthropic-* must not forward   forwarded (info); dropped: no finding
                                           anthropic: openai-*
gateway control headers (``x-portkey-*``,  both                must not forward   forwarded (warn: routing config reaches the
``x-litellm-*``, ``x-bf-*``, ``x-ccr-*``,                                         provider); dropped: no finding
``x-gomodel-*``, ``x-bricks-*``)
hop-by-hop and transport (``connection``,  both                may replace        never a finding (RFC 9110 §7.6.1: hop-by-hop
``host``, ``content-length``, ``te``,                                             headers end at the gateway)
``accept*``, ``content-type``, ``x-stainless-*``, ``x-forwarded-*`` …)
=========================================  ==================  =================  ==========================================

A profile extends the table with ``GatewayProfile.header_policy`` (``HeaderRule`` rows, matched
first; the exchange carries them as ``Exchange.header_policy``): Portkey's profile declares that
the client's ``authorization`` is forwarded on purpose (it *is* the provider key there).
Credentials are compared only through their redaction fingerprints (``fp=…``); no value is ever
read back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache

from gatewaylens.analyze.models import Kind, Severity
from gatewaylens.analyze.translate import Entry
from gatewaylens.capture.models import HeaderRule
from gatewaylens.dialects import HOP_BY_HOP_HEADERS, UpstreamKind, is_secret_name

Silent = None  # a breach of this rule is never a finding


@dataclass(frozen=True, slots=True)
class Rule:
    name: str  # glob
    policy: str  # forward | may_replace | must_add | must_not_forward
    upstream: UpstreamKind | None
    severity: Severity | None  # None: silent
    note: str = ""


GATEWAY_CONTROL = ("x-portkey-*", "x-litellm-*", "x-bf-*", "x-ccr-*", "x-gomodel-*", "x-bricks-*", "x-testgw-*")
#: Transport headers: the one hop-by-hop set (the proxy-auth pair aside: a credential and a response
#: header, which the credential rules handle) and the per-request transport headers.
TRANSPORT = (*sorted(HOP_BY_HOP_HEADERS - {"proxy-authorization", "proxy-authenticate"}),
             "host", "content-length", "content-type", "accept", "accept-encoding", "accept-language", "via", "date",
             "expect", "cache-control", "pragma", "x-forwarded-*", "x-real-ip", "forwarded", "sec-*", "x-stainless-*")

BUILTIN: tuple[Rule, ...] = (
    *(Rule(n, "may_replace", None, Silent, "transport / hop-by-hop") for n in TRANSPORT),
    Rule("user-agent", "may_replace", None, "info", "the gateway's own client may say who it is"),
    Rule("anthropic-version", "must_add", "anthropic", "error", "Anthropic answers 400 without it"),
    Rule("anthropic-beta", "forward", "anthropic", "warn", "beta features the client turned on"),
    Rule("anthropic-*", "must_not_forward", "openai", "info", "the other provider's header"),
    Rule("openai-beta", "forward", "openai", "warn", "beta features the client turned on"),
    Rule("openai-organization", "forward", "openai", "warn", "billing organization"),
    Rule("openai-project", "forward", "openai", "warn", "billing project"),
    Rule("openai-*", "must_not_forward", "anthropic", "info", "the other provider's header"),
    *(Rule(n, "must_not_forward", None, "warn", "the gateway's own control header") for n in GATEWAY_CONTROL),
    *(Rule(n, "forward", None, "info", "tracing / correlation") for n in
      ("traceparent", "tracestate", "x-request-id", "idempotency-key")),
    Rule("x-*", "forward", None, "info", "client metadata"),
)


def profile_rules(extra: Sequence[HeaderRule], upstream: UpstreamKind) -> tuple[Rule, ...]:
    return tuple(Rule(r.name.lower(), r.policy, r.upstream, r.severity, r.note) for r in extra
                 if r.upstream in (None, upstream))


def rules_for(extra: Sequence[HeaderRule], upstream: UpstreamKind) -> tuple[Rule, ...]:
    """The profile's rules (first) and the built-in table, for one upstream kind."""
    return profile_rules(extra, upstream) + tuple(r for r in BUILTIN if r.upstream in (None, upstream))


@lru_cache(maxsize=4096)
def rule_of(name: str, rules: tuple[Rule, ...]) -> Rule | None:
    """The first rule whose glob matches (memoised: the same few headers recur in every exchange)."""
    for r in rules:
        if fnmatchcase(name, r.name):
            return r
    return None


_FP_RE = re.compile(r"fp=([0-9a-f]{8})")


def _fp(value: str) -> str | None:
    m = _FP_RE.search(value)
    return m.group(1) if m else None


def _items(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def compare_headers(client: dict[str, str], upstream: dict[str, str], *, upstream_kind: UpstreamKind = "openai",
                    policy: Sequence[HeaderRule] = (), include_kept: bool = False) -> list[Entry]:
    """Entries (``src`` = client request headers, ``dst`` = upstream request headers) for every
    breach of the header policy.  Credentials are compared only through their fingerprints."""
    rules = rules_for(policy, upstream_kind)
    # Credentials follow only a profile's explicit rules (never the `x-*` metadata glob).
    cred_rules = profile_rules(policy, upstream_kind)
    out: list[Entry] = []
    up_creds = {k: v for k, v in upstream.items() if is_secret_name(k) and _fp(v)}
    cl_creds = {k: v for k, v in client.items() if is_secret_name(k) and _fp(v)}
    used: set[str] = set()
    for name, value in cl_creds.items():
        fp = _fp(value)
        same = [k for k, v in up_creds.items() if _fp(v) == fp]
        rule = rule_of(name, cred_rules)
        on_purpose = rule is not None and rule.policy == "forward"
        if same:
            target = name if name in same else same[0]
            used.add(target)
            kind: Kind = "kept" if target == name else "renamed"
            if on_purpose:
                if include_kept or kind == "renamed":
                    out.append(Entry(kind, name, target, value, up_creds[target], "info",
                                     f"the client's credential forwarded as the provider key, as the profile says "
                                     f"({rule.note or 'header_policy'})" if rule else "forwarded"))
            else:
                out.append(Entry(kind, name, target, value, up_creds[target], "warn",
                                 "the client's credential was forwarded verbatim to the upstream"))
        elif up_creds:
            target = next(iter(up_creds))
            used.add(target)
            if on_purpose:
                out.append(Entry("changed", name, target, value, up_creds[target], "warn",
                                 "the profile says the client's credential is forwarded, but the gateway sent another"))
            elif include_kept:
                out.append(Entry("changed", name, target, value, up_creds[target], "info",
                                 "the gateway replaced the client's credential with its own"))
        else:
            out.append(Entry("dropped", name, None, value, None, "warn",
                             "no credential was sent upstream (a real provider answers 401)"))
    for name, value in client.items():
        if name in cl_creds or is_secret_name(name):
            continue
        rule = rule_of(name, rules)
        if rule is None or rule.severity is None:
            continue
        up_value = upstream.get(name)
        if rule.policy == "must_not_forward":
            if up_value is not None and up_value == value:
                out.append(Entry("kept", name, name, value, up_value, rule.severity,
                                 f"forwarded to the upstream although it must not be ({rule.note})"))
            continue
        if up_value is None:
            if rule.policy == "must_add":
                continue  # judged below, whoever supplies it
            sev: Severity = rule.severity if rule.policy == "forward" else "info"
            out.append(Entry("dropped", name, None, value, None, sev, f"header not forwarded upstream ({rule.note})"))
        elif up_value == value:
            if include_kept:
                out.append(Entry("kept", name, name, value, value, "info", "forwarded"))
        elif name.endswith("-beta") and set(_items(value)) <= set(_items(up_value)):
            out.append(Entry("changed", name, name, value, up_value, "info",
                             "every client flag forwarded; the gateway added its own"))
        elif name.endswith("-beta"):
            lost = sorted(set(_items(value)) - set(_items(up_value)))
            out.append(Entry("changed", name, name, value, up_value, rule.severity,
                             f"beta flag(s) lost on the way up: {', '.join(lost)}"))
        elif rule.policy == "forward":
            out.append(Entry("changed", name, name, value, up_value, rule.severity, f"header value rewritten ({rule.note})"))
        elif include_kept:  # may_replace / must_add: the gateway may send its own value
            out.append(Entry("changed", name, name, value, up_value, "info", f"replaced by the gateway ({rule.note})"))
    # What the upstream must carry whoever supplies it.
    for r in rules:
        if r.policy != "must_add" or "*" in r.name or r.severity is None:
            continue
        if r.name not in upstream:
            out.append(Entry("dropped", r.name if r.name in client else None, r.name, client.get(r.name), None,
                             r.severity, f"{r.name} missing from the upstream request ({r.note})"))
        elif r.name not in client and include_kept:
            out.append(Entry("added", None, r.name, None, upstream[r.name], "info", "added by the gateway"))
    for name, value in upstream.items():
        if name in client or is_secret_name(name):
            continue
        if name in ("anthropic-beta", "openai-beta"):
            out.append(Entry("added", None, name, None, value, "info", "header added by the gateway"))
    return out
