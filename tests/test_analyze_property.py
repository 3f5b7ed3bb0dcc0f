"""Property tests: an identity gateway yields only `kept`; injected renames/drops/additions are found
exactly, with no other finding (cross-checked against DeepDiff's view of the same pair)."""

from __future__ import annotations

import copy
from typing import Any

from deepdiff import DeepDiff
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewaylens.analyze.translate import Translator, iter_leaves
from gatewaylens.dialects import DIALECTS, dotted

_ALNUM = st.characters(whitelist_categories=("Lu", "Ll", "Nd"), max_codepoint=0x24F)
keys = st.from_regex(r"x[a-z]{2,6}", fullmatch=True)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10_000, 10_000),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.text(alphabet=_ALNUM, max_size=24),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=16)
bodies = st.dictionaries(keys, json_values, min_size=1, max_size=8)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(body=bodies, src=st.sampled_from(DIALECTS), dst=st.sampled_from(DIALECTS))
def test_identity_gateway_yields_only_kept(body: dict[str, Any], src: str, dst: str) -> None:
    entries = Translator("request", src, dst, include_kept=True).compare(body, copy.deepcopy(body))  # type: ignore[arg-type]
    assert {e.kind for e in entries} <= {"kept"}
    assert sorted(e.src_path or "" for e in entries) == sorted(p for p, _ in iter_leaves(body))
    assert Translator("request", src, dst).compare(body, copy.deepcopy(body)) == []  # type: ignore[arg-type]


@st.composite
def injected(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], set[tuple[str, str | None, str | None]], str]:
    base = draw(st.dictionaries(keys, json_values, min_size=2, max_size=10))
    names = sorted(base)
    renamed = set(draw(st.lists(st.sampled_from(names), unique=True, max_size=3)))
    dropped = set(draw(st.lists(st.sampled_from([n for n in names if n not in renamed] or names), unique=True, max_size=3))) - renamed
    added = draw(st.lists(st.from_regex(r"y[a-z]{2,6}", fullmatch=True), unique=True, max_size=3))
    nested = draw(st.booleans())
    before = dict(base)
    for i, k in enumerate(sorted(renamed)):
        before[k] = f"gwl-distinct-{i}-{k}"  # distinctive and unique: it can be followed
    after = {k: copy.deepcopy(v) for k, v in before.items() if k not in dropped and k not in renamed}
    for k in sorted(renamed):
        after[f"{k}_renamed"] = before[k]
    for i, a in enumerate(added):
        after[a] = f"gwl-added-{i}"
    # An untouched field on both sides (DeepDiff reports a dict emptied entirely as one root change).
    before["zkeep"] = after["zkeep"] = "gwl-keep"
    prefix = ""
    if nested:
        # Same injections one level down, next to an untouched sibling.
        before = {"xroot": before, "xsibling": "gwl-sibling"}
        after = {"xroot": after, "xsibling": "gwl-sibling"}
        prefix = "xroot."
    expected: set[tuple[str, str | None, str | None]] = set()
    expected |= {("renamed", prefix + k, f"{prefix}{k}_renamed") for k in renamed}
    expected |= {("dropped", prefix + k, None) for k in dropped}
    expected |= {("added", None, prefix + a) for a in added}
    return before, after, expected, prefix


@SETTINGS
@given(case=injected(), dialect=st.sampled_from(DIALECTS))
def test_injected_renames_drops_additions_are_found_exactly(
        case: tuple[dict[str, Any], dict[str, Any], set[tuple[str, str | None, str | None]], str], dialect: str) -> None:
    before, after, expected, _prefix = case
    entries = Translator("request", dialect, dialect).compare(before, after)  # type: ignore[arg-type]
    got = {(e.kind, e.src_path, e.dst_path) for e in entries}
    # DeepDiff, an oracle independent of both the generator and the Translator, sees exactly the keys
    # the Translator's entries say left (renamed or dropped) and arrived (renamed or added).
    dd = DeepDiff(before, after, view="tree", threshold_to_diff_deeper=0)
    removed = {dotted(item.path(output_format="list")) for item in dd.get("dictionary_item_removed", [])}
    added = {dotted(item.path(output_format="list")) for item in dd.get("dictionary_item_added", [])}
    assert removed == {src for kind, src, _dst in got if kind in ("renamed", "dropped")}
    assert added == {dst for kind, _src, dst in got if kind in ("renamed", "added")}
    # ... and the generator's own account of what it injected matches too.
    assert got == expected
