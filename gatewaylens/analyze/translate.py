"""The translation map of one body pair: what a gateway kept, renamed, moved, converted, changed,
reordered, merged, dropped or added.

Three steps, each in its own module:

1. :mod:`gatewaylens.analyze.structural` (DeepDiff): what was removed, added, changed in place,
   shifted or reordered.
2. Semantic equivalence, here: every removed value is looked for among the added ones under each of
   its forms (:mod:`gatewaylens.analyze.forms`: base64 <-> data URL, JSON object <-> JSON text,
   number <-> numeric string), preferring the places the dialect equivalence table
   (:mod:`gatewaylens.dialects`) knows.  A value found again is a rename, a move or a conversion,
   never a drop plus an add; leaves left behind by a subtree that moved are looked for at the same
   relative place (``required[0]`` travels with its ``properties``); a table concept whose value
   travels in another vocabulary (tool choice modes, effort <-> budget) or as its negation
   (``parallel_tool_calls`` <-> ``disable_parallel_tool_use``) is a conversion when the values
   agree and a change when they do not.  Items of one list carried into one upstream item are
   ``merged``; one item carried into several is ``split``.
3. Severity by effect (:mod:`gatewaylens.analyze.severity`).

Only distinctive values are tracked by value; common words, booleans and small numbers move only
along known translations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gatewaylens.analyze import severity as sev
from gatewaylens.analyze.forms import (
    JSON_TEXT,
    NUMERIC_TEXT,
    SAME,
    Form,
    converted_form,
    forms,
    semantically_equal,
)
from gatewaylens.analyze.models import Kind, Severity
from gatewaylens.analyze.paths import (
    get,
    item_prefix,
    iter_leaves,
    iter_nodes,
    join,
    parent,
    root,
    table_generic,
    under,
)
from gatewaylens.analyze.structural import Delta, same_json, structural_diff
from gatewaylens.analyze.values import (
    STRUCTURAL_KEYS,
    excerpt,
    is_distinctive,
    last_key,
    strict_equal,
    value_key,
)
from gatewaylens.dialects import (
    KNOWN_RENAMES,
    REQUEST_EQUIVALENCES,
    RESPONSE_EQUIVALENCES,
    Dialect,
    concept_values,
    equivalent_concept,
    finish_reasons_equivalent,
    is_known_translation,
    tool_choice_mode,
)

__all__ = ["Entry", "Translator", "cache_counts", "is_default", "iter_leaves", "iter_nodes"]

Side = str  # "request" | "response"
is_default = sev.is_default


@dataclass(slots=True)
class Entry:
    """One classified place.  ``src`` is the side before the gateway, ``dst`` the side after it."""

    kind: Kind
    src_path: str | None
    dst_path: str | None
    before: Any
    after: Any
    severity: Severity
    message: str
    concept: str | None = None


_FINISH_KEYS = frozenset({"finish_reason", "stop_reason", "status"})
_INPUT_TOKEN_KEYS = frozenset({"input_tokens", "prompt_tokens"})
_EQUIVALENT_VALUE_KEYS = _FINISH_KEYS | _INPUT_TOKEN_KEYS
#: Role names that differ per dialect for the same turn.
_ROLE_EQUIVALENTS = {frozenset({"tool", "user"}), frozenset({"function", "user"}), frozenset({"developer", "system"})}
#: Lists whose items are conversation turns (merges and splits are named there).
_TURN_LISTS = frozenset({"messages", "input", "contents", "content", "output", "choices"})


class Translator:
    """Classifies a ``before`` body against an ``after`` body for one direction and dialect pair.

    ``artefact_tools``: names of tools the gateway itself added to the upstream request (LiteLLM's
    ``json_tool_call`` for structured output): on the way back, what it strips of *those* calls is
    its own plumbing, not a loss.
    """

    def __init__(self, side: Side, src_dialect: Dialect | None, dst_dialect: Dialect | None,
                 *, include_kept: bool = False, artefact_tools: frozenset[str] = frozenset()) -> None:
        self.side = side
        self.src = src_dialect
        self.dst = dst_dialect
        self.cross = src_dialect != dst_dialect
        self.include_kept = include_kept
        self.artefact_tools = artefact_tools
        self.table = REQUEST_EQUIVALENCES if side == "request" else RESPONSE_EQUIVALENCES
        self._bodies: tuple[Any, Any] = (None, None)
        self._cache: set[int] | None = None
        self._before: set[Any] | None = None

    # -- knowledge -------------------------------------------------------------------------
    def known(self, src_path: str, dst_path: str) -> str | None:
        """Concept name (or 'known rename') when src -> dst is a faithful translation (memoised:
        the same path pairs recur in every exchange of a run)."""
        return _known(self.side, self.src, self.dst, src_path, dst_path)

    def _values_match(self, src_path: str, dst_path: str, a: Any, b: Any) -> bool:
        """Different values that mean the same here (finish reasons, input tokens counted with or
        without cache tokens)."""
        if strict_equal(a, b):
            return True
        la, lb = last_key(src_path), last_key(dst_path)
        if la in _FINISH_KEYS and lb in _FINISH_KEYS:
            if finish_reasons_equivalent(self.src, a, self.dst, b):
                return True
            # The gateway called its own tool (structured output) and unwrapped it: the turn ended
            # normally as far as the client is concerned.
            return bool(self.artefact_tools) and a in ("tool_use", "tool_calls") and b in ("stop", "end_turn", "completed")
        if la in _INPUT_TOKEN_KEYS and lb in _INPUT_TOKEN_KEYS and _is_count(a) and _is_count(b):
            return abs(a - b) in self._cache_counts
        return False

    @property
    def _before_values(self) -> set[Any]:
        """Every leaf value of the before body (memoised per compared pair)."""
        if self._before is None:
            self._before = _leaf_values(self._bodies[0])
        return self._before

    @property
    def _cache_counts(self) -> set[int]:
        """Cache token counts of either body: OpenAI input counts include cached tokens, Anthropic's
        `input_tokens` exclude them, so a faithful translation differs by exactly these."""
        if self._cache is None:
            self._cache = (cache_counts(self._bodies[0]) | cache_counts(self._bodies[1])) - {0}
        return self._cache

    def _artefact(self, path: str) -> bool:
        """``path`` (in the before body) lies in a tool call to one of the gateway's own tools."""
        if not self.artefact_tools:
            return False
        p = path
        while p:
            if p.endswith("]"):
                node = get(self._bodies[0], p)
                if isinstance(node, dict):
                    name = node.get("name")
                    fn = node.get("function")
                    if isinstance(fn, dict):
                        name = fn.get("name", name)
                    if name in self.artefact_tools:
                        return True
            p = parent(p)
        return False

    # -- main ------------------------------------------------------------------------------
    def compare(self, before: Any, after: Any) -> list[Entry]:
        self._bodies = (before, after)
        self._cache = None
        self._before = None
        if before == after and same_json(before, after):
            w = Delta()
            if self.include_kept:
                w.kept.extend((p, p, v) for p, v in iter_leaves(before))
        else:
            w = structural_diff(before, after, include_kept=self.include_kept)
        out: list[Entry] = []
        for pa, pb, v in w.kept:
            out.append(Entry("kept", pa, pb, v, v, "info", "kept"))
        for pa, pb, v in w.shifted:
            out.append(Entry("moved", pa, pb, _short(v), _short(v), "info",
                             "list position shifted (an item was inserted or removed before it)"))
        for path, a_list, b_list in w.reordered:
            out.append(self._reordered(path, a_list, b_list))
        self._track(w, out)
        for pa, pb, a, b in w.changed:
            entry = self._changed(pa, pb, a, b)
            if entry is not None:
                out.append(entry)
        if self.cross and w.removed and w.added:
            out = self._collapse(w, out)
        out.extend(self._merges(out))
        return out

    def _collapse(self, w: Delta, out: list[Entry]) -> list[Entry]:
        """An object re-shaped into a sibling object of the other dialect (``source`` ->
        ``image_url``, ``thinking`` -> ``reasoning``, ``response_format`` -> a forced tool) is one
        ``converted`` entry, not one per leaf.  Minor parts it did not carry (``detail``, the
        schema's ``name``/``strict``) are named in that entry's message; anything of more weight
        stays its own entry."""
        added_roots = {ap: av for ap, av in w.added}
        for rp, rv in w.removed:
            if not isinstance(rv, dict) or not rv or rp.endswith("]"):
                continue  # list items (turns, blocks) keep their own merged/split/moved story
            carried = [e for e in out if e.kind in ("moved", "renamed", "converted") and e.src_path and e.dst_path
                       and under(e.src_path, rp) and e.src_path != rp]
            if not carried:
                continue
            targets = {next((ap for ap in added_roots if under(e.dst_path or "", ap)), None) for e in carried}
            if len(targets) != 1:
                continue
            ap = targets.pop()
            if ap is None or ap == rp or parent(ap) != parent(rp) or not isinstance(added_roots[ap], dict | list):
                continue  # a value moved out of an object (metadata.user_id -> user) stays a move
            # Structural leaves it did not need (``type: "base64"``) fold into it; a minor loss such
            # as ``detail`` stays its own entry.
            minor = [e for e in out if e.kind == "dropped" and e.src_path and under(e.src_path, rp)
                     and e.severity == "info" and sev.keys_of(e.src_path) & sev.PLUMBING_KEYS]
            extra = [e for e in out if e.kind == "added" and e.dst_path and under(e.dst_path, ap) and e.severity == "info"]
            folded = {id(e) for e in carried + minor + extra}
            worst: Severity = "info"
            for e in carried:
                if sev.RANK[e.severity] > sev.RANK[worst]:
                    worst = e.severity
            concepts = sorted({e.concept for e in carried if e.concept})
            note = f" ('{', '.join(concepts)}')" if concepts else ""
            left = ", ".join((e.src_path or "")[len(rp) + 1:] or (e.src_path or "") for e in minor)
            rest = f"; not carried: {left}" if left else ""
            warned = "; ".join(e.message for e in carried if e.severity != "info")
            why = f"; {warned}" if warned else ""
            entry = Entry("converted", rp, ap, _short(rv), _short(added_roots[ap]), worst,
                          f"{rp} written as {ap} in the {self.dst} dialect{note}{rest}{why}",
                          concepts[0] if len(concepts) == 1 else None)
            out = [e for e in out if id(e) not in folded] + [entry]
        return out

    # -- value tracking ----------------------------------------------------------------------
    def _track(self, w: Delta, out: list[Entry]) -> None:
        if not w.removed:
            out.extend(self._added(ap, av) for ap, av in w.added)
            return
        # Every node of every added subtree, indexed under each of its forms: scalars at once,
        # containers (and JSON text, parsed) only when a removed container is looked up.
        index: dict[Any, list[tuple[str, Form]]] = {}
        added_nodes: dict[str, Any] = {}
        order: dict[str, int] = {}
        containers: list[tuple[str, Any, Form]] = []

        def note(p: str, v: Any, rank: int) -> None:
            added_nodes[p] = v
            order[p] = rank
            if isinstance(v, dict | list):
                containers.append((p, v, SAME))
                return
            for k, form in forms(v):
                if k[0] == "j":
                    containers.append((p, v if form is SAME else k, form))
                else:
                    index.setdefault(k, []).append((p, form))

        for root_path, value in w.added:
            for p, v in iter_nodes(value, root_path):
                note(p, v, len(order))
        # Slots whose value changed can receive values too (a string reshaped into content blocks
        # that now also carry a tool_use_id; `tool_choice` gaining `disable_parallel_tool_use`).
        changed_nodes: dict[str, Any] = {}
        for _pa, pb, _a, b in w.changed:
            if isinstance(b, dict | list):
                for p, v in iter_nodes(b, pb):
                    if p != pb:
                        note(p, v, len(order) + 1_000_000)
                        changed_nodes[p] = v
        container_index: dict[Any, list[tuple[str, Form]]] | None = None

        def lookup(key: Any) -> list[tuple[str, Form]]:
            nonlocal container_index
            if key[0] != "j":
                return index.get(key, [])
            if container_index is None:
                container_index = {}
                for p, v, form in containers:
                    k = value_key(v) if form is SAME else v  # a parsed JSON text's key was stored as is
                    container_index.setdefault(k, []).append((p, form))
            return container_index.get(key, [])

        claimed: list[str] = []
        claimed_set: set[str] = set()

        def usable(p: str) -> bool:
            if p in claimed_set:
                return False
            return not any(under(p, c) or under(c, p) for c in claimed)

        def find(src_path: str, value: Any) -> tuple[str, str | None, Form] | None:
            cands: list[tuple[str, Form]] = []
            seen: set[str] = set()
            for k, rem_form in forms(value):
                for p, add_form in lookup(k):
                    if p in seen:
                        continue
                    if rem_form is SAME:
                        form = add_form  # the upstream holds an encoding of the client's value
                    elif add_form is SAME:
                        form = rem_form  # the client's value was the encoding
                    else:
                        continue
                    seen.add(p)
                    cands.append((p, form))
            distinctive = _is_trackable(value)
            best: tuple[tuple[int, int, int, int], str, str | None, Form] | None = None
            for c, form in cands:
                if not usable(c):
                    continue
                concept = self.known(src_path, c)
                if not distinctive and not concept:
                    continue
                rank = (0 if concept else 1, 0 if form.faithful else 1, 0 if parent(c) == parent(src_path) else 1, order[c])
                if best is None or rank < best[0]:
                    best = (rank, c, concept, form)
            # Value-equivalent pairs the table knows (finish reasons, input tokens counted with or
            # without cache tokens) even when the values differ; a known pair outranks a bare value match.
            if last_key(src_path) in _EQUIVALENT_VALUE_KEYS and not isinstance(value, dict | list) and (
                    best is None or best[0][0] != 0):
                for c, v in added_nodes.items():
                    if usable(c) and not isinstance(v, dict | list) and self._values_match(src_path, c, value, v):
                        concept = self.known(src_path, c)
                        if concept:
                            return c, concept, SAME
            return (best[1], best[2], best[3]) if best else None

        def claim(p: str) -> None:
            claimed.append(p)
            claimed_set.add(p)

        def track(path: str, value: Any, entries: list[Entry], rest: list[tuple[str, Any]]) -> None:
            """Whole subtree first; failing that, its children, so `parameters` moves as one."""
            hit = find(path, value)
            if hit:
                claim(hit[0])
                entries.append(self._moved(path, hit[0], value, added_nodes[hit[0]], hit[1], hit[2]))
            elif isinstance(value, dict | list) and value:
                before, sub = len(entries), list[tuple[str, Any]]()
                for cp, cv in _children(path, value):
                    track(cp, cv, entries, sub)
                if len(entries) == before and path.endswith("]"):
                    rest.append((path, value))  # nothing of this list item was carried: one drop, at the item
                else:
                    rest.extend(sub)
            else:
                rest.append((path, value))

        unmatched_removed: list[tuple[str, Any]] = []
        tracked_sources: list[str] = []
        removed_cache: set[Any] | None = None

        def removed_values() -> set[Any]:
            nonlocal removed_cache
            if removed_cache is None:
                removed_cache = set().union(*(_leaf_values(rv) for _rp, rv in w.removed))
            return removed_cache
        for rp, rv in w.removed:
            entries: list[Entry] = []
            rest: list[tuple[str, Any]] = []
            track(rp, rv, entries, rest)
            if not entries:
                unmatched_removed.append((rp, rv))
                continue
            out.extend(entries)
            tracked_sources.extend(e.src_path or "" for e in entries)
            anchors = _anchors(entries)
            for lp, lv in rest:
                # A leaf left behind by siblings that moved is looked for at the same relative place
                # (`tools[1].function.parameters.required[0]` with its `properties`).
                along = _along(lp, anchors)
                if along is not None and along in added_nodes and usable(along):
                    av = added_nodes[along]
                    if strict_equal(av, lv) or semantically_equal(av, lv):
                        claim(along)
                        out.append(Entry("moved", lp, along, lv, av, "info", f"carried with its siblings: {lp} -> {along}"))
                        continue
                    vocabulary = last_key(lp) in STRUCTURAL_KEYS and self.cross and not _in_schema(lp)
                    # The place may hold another client value that moved there (a system prompt
                    # written as the first message): then this leaf did not change, it was displaced.
                    displaced = value_key(av) in removed_values()
                    if not isinstance(lv, dict | list) and not isinstance(av, dict | list) and not vocabulary \
                            and not displaced:
                        # Its siblings moved and this place holds another value: an edit on the way
                        # (a `type` of the other dialect's vocabulary is not one).
                        changed = self._changed(lp, along, lv, av)
                        if changed is not None:
                            claim(along)
                            out.append(changed)
                            continue
                if last_key(lp) in STRUCTURAL_KEYS and not is_distinctive(lv):
                    continue  # e.g. the "role" of a system message moved into `system`
                if _inside_sibling(lp, lv, entries):
                    continue  # `media_type` carried inside the data URL its sibling became
                out.append(self._dropped(lp, lv))
        # A structural leaf (`type: "function"`) whose siblings moved went with them.
        unmatched_removed = [
            (rp, rv) for rp, rv in unmatched_removed
            if not (last_key(rp) in STRUCTURAL_KEYS and not is_distinctive(rv)
                    and any(under(t, parent(rp)) for t in tracked_sources))
        ]

        # Concept-level translations whose value travels in another vocabulary, unit or sign
        # (reasoning_effort -> thinking budget, parallel_tool_calls -> disable_parallel_tool_use).
        leftover = list(w.added) + [(p, v) for p, v in changed_nodes.items() if usable(p)]
        for rp, rv in unmatched_removed:
            match = self._concept_match(rp, rv, leftover, usable) if "[" not in rp else None
            if match is None:
                out.append(self._dropped(rp, rv))
                continue
            sp, sv, ap, av, concept, foreign = match
            claim(ap)
            entry = self._concept_entry(sp, ap, sv, av, concept)
            if not self.cross and entry.kind == "converted":
                # Rewritten into another field of the same dialect, which took the original as it was
                # (LiteLLM 1.106.12 turns output_config.effort into a thinking budget).
                entry.severity = "warn"
                entry.message += f"; the {self.dst} dialect takes {sp} as it is"
            elif foreign and entry.kind == "converted":
                entry.severity = "warn"
                entry.message += (f"; {ap} is the {foreign} dialect's form, the {self.dst} dialect writes "
                                  f"'{concept}' as {_form_in(self.side, self.dst, concept)}")
            out.append(entry)
            for lp, lv in iter_leaves(rv, rp):
                # The rest of the container (``thinking.type``) went with the value that carries it.
                if lp != sp and not under(lp, sp) and not (last_key(lp) in STRUCTURAL_KEYS or is_default(lp, lv)):
                    out.append(self._dropped(lp, lv))

        # What is left of the added subtrees.
        for ap, av in w.added:
            if ap in claimed_set:
                continue
            inner = [c for c in claimed if under(c, ap)]
            if not inner:
                if last_key(ap) in STRUCTURAL_KEYS and not is_distinctive(av) and any(
                        under(c, parent(ap)) for c in claimed):
                    continue
                out.append(self._added(ap, av))
                continue
            self._added_rest(ap, av, inner, out)

    def _added_rest(self, path: str, value: Any, inner: list[str], out: list[Entry]) -> None:
        """The parts of an added subtree nothing was carried into, each as one entry at the largest
        such node: an injected content block is one ``added`` at ``content[0]``, not one per leaf."""
        for cp, cv in _children(path, value):
            if any(under(cp, c) for c in inner):
                continue  # carried there as a whole
            if any(under(c, cp) for c in inner):
                if isinstance(cv, dict | list):
                    self._added_rest(cp, cv, inner, out)
                continue
            if last_key(cp) in STRUCTURAL_KEYS and not isinstance(cv, dict | list):
                continue
            out.append(self._added(cp, cv))

    def _concept_match(self, rp: str, rv: Any, leftover: list[tuple[str, Any]],
                       usable: Any) -> tuple[str, Any, str, Any, str, str | None] | None:
        """A node of the removed value (itself or a descendant: ``thinking.budget_tokens`` of
        ``thinking``) whose concept an added node carries: (source path, source value, added path,
        added value, concept, foreign dialect).  The added node may be in the target dialect's form
        or, failing that, in another dialect's form (``reasoning.effort`` sent in a Chat body): then
        ``foreign`` names that dialect."""
        sources = list(iter_nodes(rv, rp)) if isinstance(rv, dict) else [(rp, rv)]
        for sp, sv in sources:
            for ap, av in leftover:
                # The table names both places, so an unclaimed node inside a partly carried added
                # subtree is fair game (``stop_reason`` -> ``choices[0].finish_reason`` beside the
                # text carried into ``choices[0].message``); whole list items are not.
                for np, nv in iter_nodes(av, ap):
                    if np.endswith("]") or not usable(np):
                        continue
                    concept = _equivalent(self.side, self.src, sp, self.dst, np)
                    if concept:
                        return sp, sv, np, nv, concept, None
        if self.src is None or self.dst is None:
            return None
        for sp, sv in sources:
            mine = _concept_of(self.side, self.src, table_generic(sp))
            if mine is None:
                continue
            for ap, av in leftover:
                if not usable(ap) or "[" in ap:
                    continue
                for np, nv in iter_nodes(av, ap):
                    for other in ("chat", "responses", "messages"):
                        if other != self.dst and _concept_of(self.side, other, table_generic(np)) == mine:
                            return sp, sv, np, nv, mine, other
        return None

    def _concept_entry(self, rp: str, ap: str, rv: Any, av: Any, concept: str) -> Entry:
        rule = concept_values(self.table, concept, self.src, self.dst)
        if rule == "negated":
            if isinstance(rv, bool) and isinstance(av, bool):
                if rv != av:
                    return Entry("converted", rp, ap, rv, av, "info",
                                 f"'{concept}' written as its negation: {rp}={excerpt(rv)} -> {ap}={excerpt(av)}", concept)
                return Entry("changed", rp, ap, rv, av, "error",
                             f"'{concept}' inverted: {rp}={excerpt(rv)} became {ap}={excerpt(av)}, which means the opposite",
                             concept)
        elif rule == "map" or strict_equal(rv, av) or converted_form(rv, av) is not None:
            return Entry("converted", rp, ap, rv, av, "info",
                         f"'{concept}' converted: {excerpt(rv)} -> {excerpt(av)}", concept)
        return self._changed(rp, ap, rv, av, translated=concept) or Entry(
            "converted", rp, ap, rv, av, "info", f"'{concept}' carried as {excerpt(av)}", concept)

    # -- entries -----------------------------------------------------------------------------
    def _moved(self, sp: str, dp: str, before: Any, after: Any, concept: str | None, form: Form) -> Entry:
        kind: Kind = "renamed" if parent(sp) == parent(dp) else "moved"
        label = "" if concept in (None, "known rename") else f" ('{concept}')"
        cpt = None if concept == "known rename" else concept
        if form is NUMERIC_TEXT:
            return Entry("changed", sp, dp, before, after, "warn",
                         f"type coerced: {excerpt(before)} sent as {excerpt(after)} ({sp} -> {dp})", cpt)
        if form is not SAME:
            if self.side == "response" and form is JSON_TEXT and self._artefact(sp):
                return Entry("converted", sp, dp, _short(before), _short(after), "info",
                             "the gateway's own tool call unwrapped into the reply text", cpt)
            return Entry("converted", sp, dp, _short(before), _short(after), "info", f"{form.name}{label}: {sp} -> {dp}", cpt)
        same = strict_equal(before, after)
        if concept:
            if not same and not self._values_match(sp, dp, before, after):
                changed = self._changed(sp, dp, before, after, translated=concept)
                if changed is not None:
                    return changed
            how = "same value" if same else "equivalent value"
            if not same:
                return Entry("converted", sp, dp, before, after, "info", f"equivalent value{label}: {excerpt(before)} -> "
                             f"{excerpt(after)}", cpt)
            return Entry(kind, sp, dp, before, after, "info", f"faithful translation{label}: {sp} -> {dp}, {how}", cpt)
        if table_generic(sp) == table_generic(dp):
            return Entry("moved", sp, dp, before, after, "info", f"same value at another list position: {sp} -> {dp}")
        if self.side == "response" and self._artefact(sp):
            return Entry(kind, sp, dp, before, after, "info", f"the gateway's own tool call unwrapped: {sp} -> {dp}")
        return Entry(kind, sp, dp, before, after, "warn",
                     f"{kind} {sp} -> {dp} (same value); not a translation the dialect table knows")

    def _dropped(self, path: str, value: Any) -> Entry:
        concept = self._concept(path)
        has = self._has_place(path) if self.cross else True
        if self.side == "request":
            s, message = sev.request_drop(path, value, cross=self.cross, target_has_concept=has, concept=concept,
                                          dst=self.dst)
        elif self._artefact(path):
            s, message = "info", "the gateway's own tool call, stripped on the way back"
        else:
            s, message = sev.response_drop(path, value, cross=self.cross, target_has_concept=has, dst=self.dst)
        return Entry("dropped", path, None, value, None, s, message, concept)

    def _added(self, path: str, value: Any) -> Entry:
        if self.side == "request":
            s, message = sev.request_add(path, value)
            forced = _forced_tool(value) if root(path) == "tool_choice" else None
            if forced is not None and forced not in declared_tools(self._bodies[0]):
                s, message = "info", f"the gateway forces its own tool '{forced}' (it emulates a feature with it)"
        else:
            s, message = sev.response_add(path, value)
            if s != "info" and _significant(_leaf_values(value) & self._before_values):
                s, message = "info", "added on the way back: another copy of content the upstream sent"
        return Entry("added", None, path, None, _short(value), s, message, self._concept(path, dst=True))

    def _reordered(self, path: str, a: list[Any], b: list[Any]) -> Entry:
        keys = sev.keys_of(path)
        if keys & {"messages", "input", "content", "contents", "output", "choices", "system"}:
            return Entry("reordered", path, path, _short(a), _short(b), "error",
                         f"the items of {path} reached the other side in another order")
        return Entry("reordered", path, path, _short(a), _short(b), "info",
                     f"the items of {path} are in another order (their order carries no meaning)")

    def _changed(self, sp: str, dp: str, a: Any, b: Any, *, translated: str | None = None) -> Entry | None:
        """A value that sits at the same (or the translated) place with another value or type."""
        key = last_key(sp)
        concept = translated or self._concept(sp)
        both = "" if sp == dp else f" ({sp} -> {dp})"
        if semantically_equal(a, b):
            return Entry("kept", sp, dp, a, b, "info", "same JSON, re-serialised") if self.include_kept else None
        form = converted_form(a, b)
        if form is NUMERIC_TEXT:
            return Entry("changed", sp, dp, a, b, "warn", f"type coerced: {excerpt(a)} sent as {excerpt(b)}{both}", concept)
        if form is not None and form is not SAME:
            return Entry("converted", sp, dp, _short(a), _short(b), "info", f"{form.name}{both}", concept)
        if self.side == "request" and root(sp) == "model":
            return Entry("changed", sp, dp, a, b, "info", "model name mapped by the gateway's route", "model")
        if key == "tool_choice" or root(sp) == "tool_choice":
            ma, mb = tool_choice_mode(self.src, a), tool_choice_mode(self.dst, b)
            if ma is not None and ma == mb:
                return Entry("converted", sp, dp, a, b, "info", f"tool choice '{ma}' written in the {self.dst} form",
                             "tool choice")
            if ma is not None and mb is not None:
                return Entry("changed", sp, dp, a, b, "error", f"tool choice '{ma}' became '{mb}'", "tool choice")
        if self._values_match(sp, dp, a, b):
            return Entry("converted", sp, dp, a, b, "info", f"equivalent value: {excerpt(a)} -> {excerpt(b)}{both}", concept)
        if key == "role" and isinstance(a, str) and isinstance(b, str) and frozenset({a, b}) in _ROLE_EQUIVALENTS:
            return Entry("converted", sp, dp, a, b, "info", f"role '{a}' written as '{b}' in the {self.dst} dialect", concept)
        if self.side == "response" and root(sp) == "error":
            return Entry("changed", sp, dp, a, b, "warn", f"error detail changed: {excerpt(a)} -> {excerpt(b)}", concept)
        if self.side == "response" and self._artefact(sp):
            return Entry("changed", sp, dp, a, b, "info", "the gateway's own tool call, rewritten on the way back", concept)
        if isinstance(a, dict | list) or isinstance(b, dict | list) or type(a) is not type(b):
            va, vb = _leaf_values(a), _leaf_values(b)
            if va and (va <= vb or vb <= va) and _significant(va & vb):
                # Parts of the richer source form with no place in the flatter one (a cache marker
                # on a content block flattened into a string) are named, not hidden in "preserved".
                names = sorted({_first_key(p) for p, v in iter_leaves(a)
                                if not isinstance(v, dict | list) and value_key(v) not in vb
                                and not sev.keys_of(p) - {""} <= sev.PLUMBING_KEYS} - {""})
                if names:
                    return Entry("converted", sp, dp, _short(a), _short(b), "warn",
                                 f"reshaped ({_type(a)} -> {_type(b)}); not carried: {', '.join(names)}", concept)
                return Entry("converted", sp, dp, a, b, "info", f"reshaped ({_type(a)} -> {_type(b)}), value preserved",
                             concept)
            if not (_is_number(a) and _is_number(b)):
                severity: Severity = "warn"
                if self.side == "response" and sev.response_important(sp):
                    severity = "error"
                return Entry("changed", sp, dp, a, b, severity, f"type changed ({_type(a)} -> {_type(b)}){both}", concept)
        if self.side == "response":
            if self.cross and key in ("object", "type") and "[" not in sp:
                return Entry("changed", sp, dp, a, b, "info", f"object type of the {self.dst} dialect", concept)
            if key in sev.VOLATILE_RESPONSE_KEYS:
                return Entry("changed", sp, dp, a, b, "info", f"{key} rewritten by the gateway", concept)
            if root(sp) == "usage" and key not in sev.USAGE_COUNTERS:
                return Entry("changed", sp, dp, a, b, "warn", f"usage detail changed: {excerpt(a)} -> {excerpt(b)}{both}",
                             concept)
            if sev.response_important(sp):
                return Entry("changed", sp, dp, a, b, "error", f"value changed: {excerpt(a)} -> {excerpt(b)}{both}", concept)
            return Entry("changed", sp, dp, a, b, "warn", f"value changed: {excerpt(a)} -> {excerpt(b)}{both}", concept)
        if key in sev.PLUMBING_KEYS and isinstance(a, str) and isinstance(b, str):
            if self.cross:
                return Entry("converted", sp, dp, a, b, "info", f"{key} '{a}' written as '{b}' in the {self.dst} dialect",
                             concept)
            return Entry("changed", sp, dp, a, b, "warn", f"{key} changed: '{a}' -> '{b}'", concept)
        what = _change_word(a, b)
        if root(sp) in sev.IMPORTANT_REQUEST_ROOTS and not (sev.keys_of(sp) & sev.MINOR_KEYS):
            return Entry("changed", sp, dp, a, b, "error", f"{what}: {excerpt(a)} -> {excerpt(b)}{both}", concept)
        return Entry("changed", sp, dp, a, b, "warn", f"{what}: {excerpt(a)} -> {excerpt(b)}{both}", concept)

    def _merges(self, entries: list[Entry]) -> Iterator[Entry]:
        """Items of a turn list carried into one item on the other side (``merged``), or one item
        carried into several (``split``): named once, next to the leaf entries that show it."""
        into: dict[str, dict[str, None]] = {}
        outof: dict[str, dict[str, None]] = {}
        for e in entries:
            if e.kind not in ("moved", "renamed", "converted", "kept") or not e.src_path or not e.dst_path:
                continue
            si, di = item_prefix(e.src_path), item_prefix(e.dst_path)
            if si is None or di is None or si.split("[", 1)[0] not in _TURN_LISTS or di.split("[", 1)[0] not in _TURN_LISTS:
                continue
            into.setdefault(di, {})[si] = None
            outof.setdefault(si, {})[di] = None
        for di, sources in into.items():
            if len(sources) > 1:
                names = ", ".join(sources)
                yield Entry("merged", next(iter(sources)), di, list(sources), di, "info",
                            f"{names} sent to the other side as one item, {di}")
        for si, targets in outof.items():
            if len(targets) > 1 and all(len(into.get(t, {})) == 1 for t in targets):
                names = ", ".join(targets)
                yield Entry("split", si, next(iter(targets)), si, list(targets), "info",
                            f"{si} sent to the other side as {len(targets)} items: {names}")

    def _has_place(self, path: str) -> bool | None:
        """Whether the destination dialect has a field for this source path's concept (None: the
        table does not know the concept)."""
        concept = self._concept(path)
        if concept is None:
            return None
        for row in self.table:
            if row["concept"] == concept:
                return bool(row.get(self.dst or "", []))
        return None

    def _concept(self, path: str, *, dst: bool = False) -> str | None:
        dialect = self.dst if dst else self.src
        if dialect is None:
            return None
        return _concept_of(self.side, dialect, table_generic(path))


@lru_cache(maxsize=65536)
def _known(side: str, src: Dialect | None, dst: Dialect | None, src_path: str, dst_path: str) -> str | None:
    concept = _equivalent(side, src, src_path, dst, dst_path) or _subtree_equivalent(side, src, dst, src_path, dst_path)
    if concept:
        return concept
    # A rename is only faithful when the upstream dialect has the new name at all
    # (`max_completion_tokens` sent to Anthropic is ignored there, not translated).
    if (side == "request" and is_known_translation(src_path, dst_path, src, dst)
            and (dst is None or _concept_of("request", dst, table_generic(dst_path)) is not None)):
        return "known rename"
    if side == "response":
        la, lb = last_key(src_path), last_key(dst_path)
        if la and lb and (la, lb) in KNOWN_RENAMES:
            return "known rename"
    return None


@lru_cache(maxsize=65536)
def _equivalent(side: str, src: Dialect | None, src_path: str, dst: Dialect | None, dst_path: str) -> str | None:
    table = REQUEST_EQUIVALENCES if side == "request" else RESPONSE_EQUIVALENCES
    return equivalent_concept(table, src, src_path, dst, dst_path)


@lru_cache(maxsize=65536)
def _subtree_equivalent(side: str, src: Dialect | None, dst: Dialect | None, src_path: str, dst_path: str) -> str | None:
    """``src_path`` and ``dst_path`` sit at the same relative place under two paths the table pairs
    (``tools[].function.parameters.properties.city`` <-> ``tools[].input_schema.properties.city``)."""
    a, b = table_generic(src_path), table_generic(dst_path)
    pa = a
    while True:
        pa = parent(pa)
        if not pa:
            return None
        suffix = a[len(pa):]
        if len(b) > len(suffix) and b.endswith(suffix):
            concept = _equivalent(side, src, pa, dst, b[: len(b) - len(suffix)])
            if concept:
                return concept


@lru_cache(maxsize=65536)
def _concept_of(side: str, dialect: Dialect, gp: str) -> str | None:
    table = REQUEST_EQUIVALENCES if side == "request" else RESPONSE_EQUIVALENCES
    for row in table:
        if gp in row.get(dialect, []):
            return str(row["concept"])
    return None


_SCHEMA_KEYS = frozenset({"properties", "items", "$defs", "parameters", "input_schema", "schema", "anyOf", "oneOf",
                          "allOf"})


def _in_schema(path: str) -> bool:
    """The path lies inside a JSON schema, where ``type`` is data, not dialect vocabulary."""
    return bool(sev.keys_of(path) & _SCHEMA_KEYS)


def _forced_tool(choice: Any) -> str | None:
    """The tool name a tool_choice forces, in any dialect's form."""
    if not isinstance(choice, dict):
        return None
    fn = choice.get("function")
    name = fn.get("name") if isinstance(fn, dict) else choice.get("name")
    return name if isinstance(name, str) else None


def declared_tools(body: Any) -> set[str]:
    """Names of the tools a request declares, in any dialect's form."""
    tools = body.get("tools") if isinstance(body, dict) else None
    out: set[str] = set()
    for t in tools if isinstance(tools, list) else ():
        if isinstance(t, dict):
            fn = t.get("function")
            name = fn.get("name") if isinstance(fn, dict) else t.get("name")
            if isinstance(name, str):
                out.add(name)
    return out


def _form_in(side: str, dialect: Dialect | None, concept: str) -> str:
    table = REQUEST_EQUIVALENCES if side == "request" else RESPONSE_EQUIVALENCES
    for row in table:
        if row["concept"] == concept:
            paths = row.get(dialect or "", [])
            return " or ".join(paths) if paths else "nothing"
    return "nothing"


def _children(path: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield join(path, k), v
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield join(path, i), v


def _common_suffix(a: str, b: str) -> int:
    """Length of the longest common tail of two paths that starts at a key or index boundary."""
    n = 0
    best = 0
    while n < len(a) and n < len(b) and a[-1 - n] == b[-1 - n]:
        n += 1
        ch = a[-n]
        if ch in ".[" or n == len(a) or n == len(b):
            best = n if ch != "." else n - 1
    return best


def _anchors(entries: list[Entry]) -> list[tuple[str, str]]:
    """Prefix mappings ``(client prefix, upstream prefix)`` implied by values that moved: a value
    that went from ``A.x.y`` to ``B.x.y`` maps ``A`` to ``B``.  Longest client prefixes first."""
    out: dict[str, str] = {}
    for e in entries:
        if not e.src_path or not e.dst_path:
            continue
        n = _common_suffix(e.src_path, e.dst_path)
        if n <= 0:
            continue
        sp, dp = e.src_path[: len(e.src_path) - n], e.dst_path[: len(e.dst_path) - n]
        sp, dp = sp.rstrip("."), dp.rstrip(".")
        if sp and dp:
            out.setdefault(sp, dp)
    return sorted(out.items(), key=lambda kv: -len(kv[0]))


def _along(path: str, anchors: list[tuple[str, str]]) -> str | None:
    for sp, dp in anchors:
        if under(path, sp) and path != sp:
            return dp + path[len(sp):]
    return None


def _inside_sibling(path: str, value: Any, entries: list[Entry]) -> bool:
    """A distinctive string found inside the converted form of a sibling (``media_type``
    ``image/png`` inside the ``data:image/png;base64,…`` URL its ``data`` became)."""
    if not isinstance(value, str) or len(value) < 3:
        return False
    p = parent(path)
    for e in entries:
        if (e.kind == "converted" and e.src_path and parent(e.src_path) == p and isinstance(e.after, str)
                and value in e.after[:200]):
            return True
    return False


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def cache_counts(body: Any) -> set[int]:
    """Cache token counts a usage object reports (each alone and summed)."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return set()
    parts = [usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")]
    for details in ("prompt_tokens_details", "input_tokens_details"):
        d = usage.get(details)
        if isinstance(d, dict):
            parts += [d.get("cached_tokens"), d.get("cache_write_tokens")]
    nums: list[int] = [p for p in parts if isinstance(p, int) and not isinstance(p, bool)]
    out = set(nums)
    if len(nums) > 1:
        out.add(sum(nums))
    return out


def _first_key(path: str) -> str:
    """The first key name of a relative dotted path (``[0].cache_control.type`` -> ``cache_control``)."""
    return next((k for k in sev.keys_of_ordered(path) if k), "")


def _leaf_values(value: Any) -> set[Any]:
    return {value_key(v) for _, v in iter_leaves(value) if not isinstance(v, dict | list)}


def _significant(keys: set[Any]) -> bool:
    return any(is_distinctive(k[1]) for k in keys if isinstance(k, tuple) and k[0] in ("s", "n"))


def _is_trackable(value: Any) -> bool:
    if isinstance(value, dict | list):
        return bool(value) and any(is_distinctive(v) for _, v in iter_leaves(value))
    return is_distinctive(value)


def _change_word(a: Any, b: Any) -> str:
    if _is_number(a) and _is_number(b):
        return "value clamped" if abs(b) < abs(a) else "value changed"
    return "value changed"


def _type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "list" if isinstance(v, list) else "object"


def _short(v: Any) -> Any:
    """Entries carry small values whole and elide big ones (their length is kept)."""
    if isinstance(v, dict | list):
        text = json.dumps(v, ensure_ascii=False, separators=(",", ":"))
        return v if len(text) <= 160 else excerpt(v, 160)
    if isinstance(v, str) and len(v) > 400:
        return excerpt(v, 160)
    return v

