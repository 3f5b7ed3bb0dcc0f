"""``assert_translation``: a gateway's own test asserts how it translated (pytest or not).

    exchanges = await gatewaylens.capture(["mygw=http://127.0.0.1:4000"], cases=["tools-chat-required"])
    gatewaylens.assert_translation(exchanges, no_errors=True, fixture="tests/gatewaylens/fixtures")

Always checked, whatever the flags (an exchange that fails them is never a translation):

* every exchange was captured (no timeout, refused connection, broken stream; not unsupported);
* a 2xx answer is well formed for the client's dialect: a JSON object of the dialect's shape
  (``choices`` / ``output`` / ``content``), or for a stream at least one SSE frame and every
  ``data`` JSON (``[DONE]`` aside) — a gateway answering garbage fails here;
* a 2xx answer came with an upstream call (a gateway that answers on its own is not translating);
* a non-2xx answer relays an upstream error; one given without calling the upstream is a
  rejection (accepted with ``allow_rejected=True``), one given after a 2xx upstream answer a failure.

Then ``no_errors`` / ``no_warnings`` fail on behaviours of that severity, and ``fixture`` compares
each exchange with its fixture (``analyze fixtures`` layout, or one fixture file for one exchange):
a regression fails, changes and improvements are :class:`TranslationChanged` warnings unless
``exact=True``; ``update=True`` writes the fixtures instead of comparing.  The failure message
lists every problem, one line each, then the behaviours of the failing exchanges.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from gatewaylens.analyze.behaviours import BehaviourBuilder
from gatewaylens.analyze.engine import BadInput, ExchangeResult, analyze_exchange
from gatewaylens.analyze.fixtures import (
    CheckResult,
    compare_fixture,
    dump_fixture,
    exchange_label,
    fixture_of,
    fixture_relpath,
    load_known_gaps,
    read_fixture,
)
from gatewaylens.analyze.models import Behaviour
from gatewaylens.analyze.values import excerpt
from gatewaylens.capture.models import Exchange

#: the top-level key a well-formed non-stream 2xx answer of each client dialect has (a list)
_ANSWER_KEY = {"chat": "choices", "responses": "output", "messages": "content"}
_SEVERITY_RANK = {"error": 0, "warn": 1, "info": 2}


class TranslationChanged(UserWarning):
    """A fixture comparison found changes or improvements (not regressions): refresh the fixture."""


def well_formed_problems(ex: Exchange, allow_rejected: bool = False) -> list[str]:
    """What makes ``ex`` not a translation at all (empty when it is one).  ``allow_rejected``: a
    non-2xx answer given without calling the upstream (the gateway refusing what it cannot
    translate) is acceptable; one given after a 2xx upstream answer never is."""
    if ex.status == "unsupported":
        return [f"unsupported: {ex.unsupported_reason or 'no route'}"]
    cr = ex.client_response
    if ex.status == "error" or cr is None:
        why = f"{ex.error.kind}: {ex.error.message}" if ex.error else "no client response"
        return [f"not captured ({excerpt(why, 200)})"]
    if cr.status >= 300:
        last = ex.upstream_requests[-1].response.status if ex.upstream_requests else None
        if last is not None and last >= 400:
            return []  # the upstream's error, relayed: the analysis says how faithfully
        if last is None and allow_rejected:
            return []
        body = cr.body if cr.body is not None else cr.text
        return [f"rejected: HTTP {cr.status} " + (f"after the upstream answered {last}" if last else
                                                  "without calling the upstream") + f": {excerpt(body, 160)}"]
    problems: list[str] = []
    if not ex.upstream_requests:
        problems.append(f"answered HTTP {cr.status} without calling the upstream")
    if ex.stream:
        frames = cr.frames or []
        if not frames:
            got = excerpt(cr.body if cr.body is not None else cr.text, 120)
            problems.append(f"asked to stream, answered HTTP {cr.status} without any SSE frame: {got}")
        for i, f in enumerate(frames):
            if f.data.strip() != "[DONE]" and f.json_data is None:
                problems.append(f"SSE frame #{i} data is not JSON: {excerpt(f.data, 120)}")
                break
        return problems
    if cr.body is None:
        problems.append(f"answered HTTP {cr.status} with a body that is not JSON: {excerpt(cr.text, 120)}")
    elif not isinstance(cr.body, dict) or not isinstance(cr.body.get(_ANSWER_KEY[ex.dialect]), list):
        problems.append(f"answered HTTP {cr.status} with JSON that is not a {ex.dialect} answer "
                        f"(no '{_ANSWER_KEY[ex.dialect]}' list): {excerpt(cr.body, 120)}")
    return problems


def _behaviour_line(b: Behaviour) -> str:
    example = ""
    if b.example is not None:
        example = f" e.g. {b.example.path or '(body)'}" + (f" -> {b.example.to_path}" if b.example.to_path else "")
        if b.example.before is not None or b.example.after is not None:
            example += f" ({excerpt(b.example.before, 40)} -> {excerpt(b.example.after, 40)})"
    return (f"{b.severity} {b.gateway} {b.route} {b.direction} {b.path or '(body)'} {b.kind}: {b.message}{example}"
            f" [cases: {', '.join(b.cases)}]")


def assert_translation(exchanges: Sequence[Exchange], *, no_errors: bool = False, no_warnings: bool = False,
                       allow_rejected: bool = False, fixture: str | Path | None = None,
                       known_gaps: str | Path | None = None, update: bool = False, exact: bool = False) -> None:
    """Fail (``AssertionError``) unless ``exchanges`` are faithful translations; see the module doc.

    ``fixture``: a fixtures directory (``<gateway>/<case>.<upstream>[.<variant>].json`` inside, as
    ``analyze fixtures`` writes it) or one ``.json`` fixture file (then exactly one exchange);
    ``known_gaps``: accepted behaviours (as ``analyze check --known-gaps``); ``update``: write the
    fixtures instead of comparing; ``exact``: changes and improvements fail too."""
    __tracebackhide__ = True  # pytest: show the message, not this frame
    if not exchanges:
        raise AssertionError("gatewaylens: no exchanges to assert on (did the cases match the corpus?)")
    problems: list[str] = []
    failing: set[str] = set()
    results: list[ExchangeResult] = []
    for ex in exchanges:
        label = exchange_label((ex.gateway, ex.case_id, ex.upstream, ex.variant))
        for p in well_formed_problems(ex, allow_rejected):
            problems.append(f"{label}: {p}")
            failing.add(ex.id)
        results.append(analyze_exchange(ex, include_kept=True))
    builder = BehaviourBuilder({})
    for r in results:
        builder.add([f for f in r.findings if not (f.kind == "kept" and f.severity == "info")])
    behaviours = builder.finish()
    limit = 1 if no_warnings else 0 if no_errors else -1
    for b in behaviours:
        if limit >= 0 and _SEVERITY_RANK[b.severity] <= limit:
            problems.append(_behaviour_line(b))
            failing.update(b.exchanges)
    if fixture is not None:
        fixture_problems = _compare_fixtures(results, Path(fixture), known_gaps, update, exact)
        problems += fixture_problems
        for ex in exchanges:  # an exchange a fixture line names is failing too: show its behaviours
            label = exchange_label((ex.gateway, ex.case_id, ex.upstream, ex.variant))
            if any(f" {label}: " in f" {p}" for p in fixture_problems):
                failing.add(ex.id)
    if problems:
        shown = [b for b in behaviours if set(b.exchanges) & failing and _behaviour_line(b) not in problems]
        text = [f"gatewaylens: {len(problems)} problem(s) in {len(exchanges)} exchange(s)"]
        text += [f"  {p}" for p in problems]
        if shown:
            text += ["behaviours of the failing exchanges:"] + [f"  {_behaviour_line(b)}" for b in shown]
        raise AssertionError("\n".join(text))


def _compare_fixtures(results: list[ExchangeResult], fixture: Path, known_gaps: str | Path | None, update: bool,
                      exact: bool) -> list[str]:
    single = fixture.suffix == ".json" and not fixture.is_dir()
    if single and len(results) != 1:
        return [f"{fixture}: one fixture file holds one exchange, got {len(results)} (give a fixtures directory)"]
    try:
        gaps = load_known_gaps(Path(known_gaps)) if known_gaps is not None else None
    except BadInput as e:
        return [str(e)]
    res = CheckResult()
    problems: list[str] = []
    for r in results:
        current = fixture_of(r)
        target = fixture if single else fixture / fixture_relpath(current)
        if update:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(dump_fixture(current), encoding="utf-8")
            continue
        if not target.is_file():
            problems.append(f"{exchange_label(current.key())}: no fixture {target} "
                            "(write it: pytest --gatewaylens-update, or analyze fixtures RUN --out DIR)")
            continue
        try:
            old = read_fixture(target)
        except BadInput as e:
            problems.append(str(e))
            continue
        if single:  # a file named by the test: the exchange is what it is, whatever its labels
            old = old.model_copy(update={"gateway": current.gateway, "case_id": current.case_id})
        res.compared += 1
        compare_fixture(old, current, res, gaps)
    problems += [f"REGRESSION {r}" for r in res.regressions]
    soft = [f"CHANGED {c}" for c in res.changes] + [f"IMPROVED {i}" for i in res.improvements]
    if exact:
        problems += soft
    elif soft:
        warnings.warn(TranslationChanged("gatewaylens: the translation moved against its fixture (refresh it with "
                                         "--gatewaylens-update):\n  " + "\n  ".join(soft)), stacklevel=3)
    return problems
