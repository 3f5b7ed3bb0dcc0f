"""Usage accounting across dialects, exact: every counter compared as a number with its semantics.

The dialects count the same tokens differently, so a counter is never compared with its namesake
directly.  Each side's usage is first read into one neutral form (:class:`Counts`), then the
upstream's counts are projected into the client's dialect — what a faithful gateway must report —
and each client field is compared with that expectation.  The semantics (README "Usage semantics"):

========================  ======================================  ======================================  =========================================
neutral counter           Chat Completions                        Responses                               Messages
========================  ======================================  ======================================  =========================================
input (all input tokens)  ``prompt_tokens`` (includes cached)     ``input_tokens`` (includes cached)      ``input_tokens`` + ``cache_read_input_tokens``
                                                                                                          + ``cache_creation_input_tokens``
cache read                ``prompt_tokens_details.cached_tokens`` ``input_tokens_details.cached_tokens``  ``cache_read_input_tokens``
cache write               (no standard place)                     (no standard place)                     ``cache_creation_input_tokens``
output (incl. reasoning)  ``completion_tokens``                   ``output_tokens``                       ``output_tokens``
reasoning                 ``completion_tokens_details.            ``output_tokens_details.                (none: thinking is inside output_tokens)
                          reasoning_tokens``                      reasoning_tokens``
total                     ``total_tokens`` = input + output       ``total_tokens`` = input + output       (none)
audio in / out            ``prompt_tokens_details.audio_tokens``  (none)                                  (none)
                          / ``completion_tokens_details.…``
prediction accepted /     ``completion_tokens_details.            (none)                                  (none)
rejected                  accepted/rejected_prediction_tokens``
========================  ======================================  ======================================  =========================================

Sources: OpenAI's usage objects ("prompt_tokens_details.cached_tokens: cached tokens present in the
prompt", https://platform.openai.com/docs/api-reference/chat/object#chat/object-usage and
https://platform.openai.com/docs/guides/prompt-caching: cached tokens are part of the prompt
count); Anthropic's "Tracking cache performance"
(https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching#tracking-cache-performance):
``input_tokens`` are the tokens *after* the last cache breakpoint, so the total input is
``cache_read_input_tokens + cache_creation_input_tokens + input_tokens``; in a stream
``message_start`` carries the input counts and ``message_delta.usage`` the cumulative output
(https://docs.anthropic.com/en/docs/build-with-claude/streaming).  Gateways write cache writes in
OpenAI bodies as ``prompt_tokens_details.cache_write_tokens``/``cache_creation_tokens`` or a
top-level ``cache_creation_input_tokens`` (LiteLLM 1.106.12 ``litellm/types/utils.py`` ``Usage``);
when present they are checked like the others.

Severities: an input/output/total counter off by any amount, or lost, is an ``error`` (both
numbers in the message); a cached/reasoning/audio/prediction detail off or lost a ``warn``; a string where a number belongs a ``changed`` at ``warn`` (a type change); a zero-valued
counter omitted, or one the target dialect has no place for, ``info``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gatewaylens.analyze.models import Severity
from gatewaylens.analyze.translate import Entry
from gatewaylens.dialects import Dialect

#: Neutral counters in report order.
COUNTERS = ("input", "cache_read", "cache_write", "output", "reasoning", "total", "audio_in", "audio_out",
            "accepted_prediction", "rejected_prediction")
LABEL = {"input": "input tokens", "cache_read": "cached (cache read) tokens", "cache_write": "cache write tokens",
         "output": "output tokens", "reasoning": "reasoning tokens", "total": "total tokens",
         "audio_in": "audio input tokens", "audio_out": "audio output tokens",
         "accepted_prediction": "accepted prediction tokens", "rejected_prediction": "rejected prediction tokens"}
#: Counters a client bills and budgets by: losing one is an error (the others are details).
PRIMARY = frozenset({"input", "output", "total"})

#: Where each neutral counter lives in each dialect's ``usage`` (first path is the standard one;
#: later ones are gateway extensions read but never expected).
FIELDS: dict[Dialect, dict[str, tuple[str, ...]]] = {
    "chat": {
        "input": ("prompt_tokens",), "cache_read": ("prompt_tokens_details.cached_tokens",),
        "cache_write": ("prompt_tokens_details.cache_write_tokens", "prompt_tokens_details.cache_creation_tokens",
                        "cache_creation_input_tokens"),
        "output": ("completion_tokens",), "reasoning": ("completion_tokens_details.reasoning_tokens",),
        "total": ("total_tokens",), "audio_in": ("prompt_tokens_details.audio_tokens",),
        "audio_out": ("completion_tokens_details.audio_tokens",),
        "accepted_prediction": ("completion_tokens_details.accepted_prediction_tokens",),
        "rejected_prediction": ("completion_tokens_details.rejected_prediction_tokens",),
    },
    "responses": {
        "input": ("input_tokens",), "cache_read": ("input_tokens_details.cached_tokens",),
        "cache_write": ("input_tokens_details.cache_write_tokens",),
        "output": ("output_tokens",), "reasoning": ("output_tokens_details.reasoning_tokens",),
        "total": ("total_tokens",),
    },
    "messages": {
        "input": ("input_tokens",), "cache_read": ("cache_read_input_tokens",),
        "cache_write": ("cache_creation_input_tokens",), "output": ("output_tokens",),
    },
}
#: Counters with a standard place in each dialect (an extension place is not expected).
STANDARD: dict[Dialect, frozenset[str]] = {
    "chat": frozenset(COUNTERS) - {"cache_write"},
    "responses": frozenset({"input", "cache_read", "output", "reasoning", "total"}),
    "messages": frozenset({"input", "cache_read", "cache_write", "output"}),
}
#: Every key of a usage object this module judges (the rest is left to the structural diff).
def _judged_keys() -> frozenset[str]:
    out: set[str] = set()
    for table in FIELDS.values():
        for paths in table.values():
            out.update(paths)
    return frozenset(out)


JUDGED = _judged_keys()


def _get(usage: dict[str, Any], path: str) -> Any:
    cur: Any = usage
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def _count(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


@dataclass(slots=True)
class Counts:
    """One side's usage in neutral form: ``values`` by counter (``input`` is always the *total*
    input, cache included, whatever the dialect says), ``fields`` the client-side field each came
    from, ``raw`` the field values as sent (a string stays a string there)."""

    dialect: Dialect
    values: dict[str, int]
    fields: dict[str, str]
    raw: dict[str, Any]


def read(dialect: Dialect | None, usage: Any) -> Counts | None:
    """A usage object in ``dialect`` as neutral counts (None when there is none)."""
    if dialect is None or not isinstance(usage, dict):
        return None
    values: dict[str, int] = {}
    fields: dict[str, str] = {}
    raw: dict[str, Any] = {}
    for counter, paths in FIELDS[dialect].items():
        for p in paths:
            v = _get(usage, p)
            if v is _MISSING or v is None:
                continue
            raw[p] = v
            fields.setdefault(counter, p)
            n = _count(v)
            if n is None and isinstance(v, str) and v.strip().isdigit():
                n = int(v)
            if n is not None and counter not in values:
                values[counter] = n
    if dialect == "messages" and "input" in values:
        # Anthropic's input_tokens exclude cache reads and writes: the neutral input is their sum.
        values["input"] += values.get("cache_read", 0) + values.get("cache_write", 0)
    if not values and not raw:
        return None
    return Counts(dialect, values, fields, raw)


def expected(up: Counts, dialect: Dialect) -> dict[str, int]:
    """What a faithful gateway reports in ``dialect``'s fields, counter by counter (neutral form;
    ``total`` derived from input + output when the upstream dialect has none)."""
    out = dict(up.values)
    if "total" not in out and "input" in out and "output" in out:
        out["total"] = out["input"] + out["output"]
    return out


def _field_value(counter: str, neutral: dict[str, int], dialect: Dialect) -> int | None:
    """The value the client's field for ``counter`` must hold (Messages' input_tokens exclude cache)."""
    v = neutral.get(counter)
    if v is None:
        return None
    if dialect == "messages" and counter == "input":
        return v - neutral.get("cache_read", 0) - neutral.get("cache_write", 0)
    return v


def _diagnose(counter: str, got: int, want: int, up: Counts, dialect: Dialect) -> str:
    """Why a counter is off, when the difference is one the semantics explain."""
    d = got - want
    if got == 0:
        return "reported as 0"
    cr, cw = up.values.get("cache_read", 0), up.values.get("cache_write", 0)
    if counter in ("input", "total"):
        if cr + cw and -d == cr + cw:
            return f"the cache tokens ({cr} read + {cw} written) were left out"
        if cr and -d == cr:
            return f"the {cr} cache-read tokens were left out"
        if cw and -d == cw:
            return f"the {cw} cache-write tokens were left out"
        if cr + cw and d == cr + cw:
            return f"the cache tokens ({cr} read + {cw} written) were counted twice"
        if cr and d == cr:
            return f"the {cr} cache-read tokens were counted twice"
    if counter == "output":
        r = up.values.get("reasoning", 0)
        if r and -d == r:
            return f"the {r} reasoning tokens were left out"
        if r and d == r:
            return f"the {r} reasoning tokens were counted twice"
    return f"off by {d:+d}"


def _mismatch(path: str, counter: str, got: int, want: int, neutral: dict[str, int], up: Counts, dialect: Dialect) -> str:
    """``usage.prompt_tokens is 1068, expected 1100 (…): the cache tokens (13 read + 19 written) were left out``."""
    total = neutral[counter]
    how = f"{_semantics(dialect, counter, up)} = {total}"
    if dialect == "messages" and counter == "input":
        cache = neutral.get("cache_read", 0) + neutral.get("cache_write", 0)
        how = (f"the upstream's {total} input tokens minus {cache} cache tokens: Anthropic's input_tokens exclude "
               "cache reads and writes")
        d = got - want
        why = ("reported as 0" if got == 0 else f"the {cache} cache tokens were left in input_tokens"
               if cache and d == cache else f"off by {d:+d}")
    else:
        if dialect in ("chat", "responses") and counter == "input" and up.dialect == "messages":
            how += "; OpenAI's input counts include cached tokens, Anthropic's input_tokens exclude them"
        why = _diagnose(counter, got, want, up, dialect)
    return f"{path} is {got}, expected {want} ({how}): {why}"


def _where(dialect: Dialect, counter: str) -> str:
    return "usage." + FIELDS[dialect][counter][0]


def _semantics(dialect: Dialect, counter: str, up: Counts) -> str:
    """The upstream fields the expectation comes from, for the message."""
    if counter == "input" and up.dialect == "messages":
        return "input_tokens + cache_read_input_tokens + cache_creation_input_tokens"
    if counter == "total" and "total" not in up.values:
        return "input + output"
    return up.fields.get(counter, counter)


def compare(up_usage: Any, up_dialect: Dialect | None, cl_usage: Any, cl_dialect: Dialect | None, *,
            requested: bool = True, cut: bool = False, include_kept: bool = False) -> list[Entry]:
    """Entries (``src`` = upstream answer, ``dst`` = client response, paths ``usage.<field>``) for
    every counter the two sides disagree on.  ``requested``: the client asked for usage (a Chat
    Completions stream without ``include_usage`` did not: every difference is then ``info``)."""
    out: list[Entry] = []
    if cl_dialect is None:
        return out
    up = read(up_dialect, up_usage)
    cl = read(cl_dialect, cl_usage)
    if up is None and cl is None:
        return out
    if up is None:
        assert cl is not None
        if all(v == 0 for v in cl.values.values()):
            sev: Severity = "warn" if requested and not cut else "info"
            out.append(Entry("added", None, "usage", None, cl.raw, sev,
                             "usage reported as zero although the upstream reported none: the client is told "
                             "the call cost nothing"))
        else:
            out.append(Entry("added", None, "usage", None, cl.raw, "info",
                             "usage reported to the client though the upstream sent none (the gateway's own count)"))
        return out
    if cl is None:
        msg = "usage lost: the upstream reported it, the client got none"
        if not requested:
            msg = "usage not passed on (the client did not ask for it)"
        out.append(Entry("dropped", "usage", None, {k: v for k, v in up.values.items()}, None,
                         "error" if requested else "info", msg))
        return _soften(out, requested, cut)
    want = expected(up, cl_dialect)
    differences = False
    kept: list[Entry] = []
    for counter in COUNTERS:
        w = _field_value(counter, want, cl_dialect)
        place = counter in STANDARD[cl_dialect] or counter in cl.fields
        got_raw = cl.raw.get(cl.fields[counter]) if counter in cl.fields else _MISSING
        path = "usage." + cl.fields[counter] if counter in cl.fields else (
            _where(cl_dialect, counter) if counter in FIELDS[cl_dialect] else f"usage.({LABEL[counter]})")
        src = "usage." + up.fields[counter] if counter in up.fields else None
        if w is None:
            # The upstream reported nothing for this counter.
            if got_raw is _MISSING:
                continue
            g = _count(got_raw)
            if g == 0 or counter == "total":
                continue  # a zero, or a total the client's dialect always carries (checked below)
            if counter not in STANDARD[up.dialect]:
                # The upstream's dialect has no such counter (Anthropic reports no reasoning tokens):
                # a number here is the gateway's own estimate.
                out.append(Entry("added", None, path, None, got_raw, "info",
                                 f"{LABEL[counter]} = {got_raw}: the gateway's own estimate (the {up.dialect} "
                                 "dialect has no such counter)"))
                continue
            differences = True
            out.append(Entry("added", None, path, None, got_raw, "warn",
                             f"{LABEL[counter]} = {got_raw} reported although the upstream reported none"))
            continue
        if not place:
            if w and counter != "total":  # a total is derivable: nothing is lost
                out.append(Entry("dropped", src, None, w, None, "info",
                                 f"the {cl_dialect} dialect has no place for {LABEL[counter]} ({w})"))
            continue
        if got_raw is _MISSING:
            if w == 0:
                out.append(Entry("dropped", src, None, 0, None, "info", f"zero-valued {LABEL[counter]} omitted"))
                continue
            differences = True
            sev2: Severity = "error" if counter in PRIMARY else "warn"
            out.append(Entry("dropped", src, path, w, None, sev2,
                             f"{LABEL[counter]} lost: the upstream reported {w} ({_semantics(cl_dialect, counter, up)}),"
                             f" the client's {path} is missing"))
            continue
        g = _count(got_raw)
        if g is None:
            differences = True
            if isinstance(got_raw, str) and got_raw.strip().isdigit() and int(got_raw) == w:
                out.append(Entry("changed", src, path, w, got_raw, "warn",
                                 f"{path} is the string {got_raw!r} where a number belongs (type change)"))
            else:
                out.append(Entry("changed", src, path, w, got_raw, "error",
                                 f"{path} is {got_raw!r}, not a token count (the upstream reported {w})"))
            continue
        if g != w:
            differences = True
            out.append(Entry("changed", src, path, w, g, "error" if counter in PRIMARY else "warn",
                             _mismatch(path, counter, g, w, want, up, cl_dialect)))
            continue
        if src != path:
            out.append(Entry("converted", src, path, w, g, "info", f"{LABEL[counter]} carried with its semantics ({w})"))
        elif include_kept:
            kept.append(Entry("kept", src, path, w, g, "info", f"{LABEL[counter]} forwarded ({w})"))
    out = _zeroed(out, up, cl)
    if include_kept:
        # Everything equal: one fact for the whole usage object; else each counter that was kept.
        out.extend(kept if differences else [Entry("kept", "usage", "usage", dict(up.values), dict(cl.values), "info",
                                                   "usage forwarded with the same counts")])
    return _soften(out, requested, cut)


def _zeroed(out: list[Entry], up: Counts, cl: Counts) -> list[Entry]:
    """A client usage whose every counter is 0 while the upstream counted tokens is one fact (the
    gateway wrote a placeholder usage, claude-code-router's streams do), not one per counter."""
    if any(v for v in cl.values.values()) or not any(up.values.get(c) for c in PRIMARY):
        return out
    zeroed = [e for e in out if e.kind == "changed" and e.after == 0 and e.before]
    if not any(e.severity == "error" for e in zeroed):
        return out
    counts = ", ".join(f"{LABEL[c]} {up.values[c]}" for c in ("input", "output") if up.values.get(c))
    entry = Entry("changed", "usage", "usage", dict(up.values), dict(cl.values), "error",
                  f"usage zeroed: every counter the client got is 0 while the upstream reported {counts}")
    gone = {id(e) for e in zeroed}
    return [e for e in out if id(e) not in gone] + [entry]


def _soften(out: list[Entry], requested: bool, cut: bool) -> list[Entry]:
    """Usage the client did not ask for may be left out (a wrong number it was sent is still wrong);
    a cut upstream explains what is missing."""
    for e in out:
        if not requested and e.severity != "info" and e.kind in ("dropped", "added"):
            e.severity = "info"
            e.message += " (the client did not ask for usage)"
        elif cut and e.severity == "error":
            e.severity = "warn"
            e.message += " (the upstream's stream ended early)"
    return out


def is_usage_entry(e: Entry) -> bool:
    """An entry about the ``usage`` subtree (which this module judges instead of the diff)."""
    for p in (e.src_path, e.dst_path):
        if p is not None and (p == "usage" or p.startswith("usage.") or p.startswith("usage[")):
            return True
    return False


def judged(e: Entry) -> bool:
    """A usage entry this module replaces: the whole usage object, or one of its counters.
    Other usage fields (``service_tier``, a gateway's ``cost``) stay with the structural diff."""
    for p in (e.src_path, e.dst_path):
        if p is None:
            continue
        if p == "usage":
            return True
        if p.startswith("usage."):
            rest = p[len("usage."):]
            if rest in JUDGED or any(k.startswith(rest + ".") for k in JUDGED):
                return True
    return False


# --------------------------------------------------------------------------------------------
# Where a stream carries its usage (what the client's SDK ends up with).
# --------------------------------------------------------------------------------------------


def stream_usage(dialect: Dialect | None, frames: Iterable[tuple[str | None, Any]]) -> dict[str, Any] | None:
    """The usage a stream reports, read the way each dialect's SDK accumulates it: Chat
    Completions' last non-null ``usage`` (wherever it is: the grammar names a wrong position);
    Responses' terminal ``response.usage``; Messages' ``message_start.message.usage`` updated by
    each ``message_delta.usage`` (cumulative counts)."""
    usage: dict[str, Any] | None = None
    for event, data in frames:
        if not isinstance(data, dict):
            continue
        if dialect == "chat":
            if isinstance(data.get("usage"), dict):
                usage = data["usage"]
        elif dialect == "responses":
            resp = data.get("response")
            if isinstance(resp, dict) and isinstance(resp.get("usage"), dict):
                usage = resp["usage"]
        elif dialect == "messages":
            t = data.get("type") or event
            if t == "message_start":
                msg = data.get("message")
                if isinstance(msg, dict) and isinstance(msg.get("usage"), dict):
                    usage = dict(msg["usage"])
            elif t == "message_delta" and isinstance(data.get("usage"), dict):
                usage = {**(usage or {}), **{k: v for k, v in data["usage"].items() if v is not None}}
    return usage
