"""The translation map of one body pair: what a gateway kept, renamed, moved, changed, dropped, added.

DeepDiff does the structural diff: which keys and list items were removed or added, which values
or types changed, which list items moved.  Lists of different lengths are aligned item by item
through DeepDiff's ``iterable_compare_func`` (:class:`_SameItem` says which items are the same
item), so a system message inserted at ``messages[0]`` shifts the conversation instead of
"changing" every message.  On top of that report, value tracking turns a removed value found
again at an added place into the rename or move it is, preferring pairs the dialect equivalence
table (:mod:`gatewaylens.dialects`) knows.  Only distinctive values are tracked by value; common
words, booleans and small numbers move only along known translations.

DeepDiff costs ~0.1 ms per call plus ~10 microseconds per node it visits, so it is called once per
body pair, only when the bodies differ, and only on the top-level keys whose values differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import CannotCompare

from gatewaylens.analyze.models import Kind, Severity
from gatewaylens.analyze.values import (
    STRUCTURAL_KEYS,
    excerpt,
    is_distinctive,
    last_key,
    strict_equal,
    value_key,
)
from gatewaylens.dialects import (
    REQUEST_EQUIVALENCES,
    RESPONSE_EQUIVALENCES,
    Dialect,
    equivalent_concept,
    finish_reasons_equivalent,
    generic_path,
    is_known_translation,
    tool_choice_mode,
)

Side = str  # "request" | "response"


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


@dataclass(slots=True)
class _Delta:
    """DeepDiff's report of one body pair in the classifier's terms (dotted paths, ``src`` side
    first): what stayed, which list items moved, what was removed, added or changed in place."""

    kept: list[tuple[str, str, Any]] = field(default_factory=list)
    shifted: list[tuple[str, str, Any]] = field(default_factory=list)
    removed: list[tuple[str, Any]] = field(default_factory=list)
    added: list[tuple[str, Any]] = field(default_factory=list)
    changed: list[tuple[str, str, Any, Any]] = field(default_factory=list)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _dotted(parts: list[Any]) -> str:
    out = ""
    for part in parts:
        out = _join(out, part if isinstance(part, int) else str(part))
    return out


def iter_leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf (scalar, empty object, empty list) of a JSON value with its dotted path."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from iter_leaves(v, _join(path, k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from iter_leaves(v, _join(path, i))
    else:
        yield path, value


def iter_nodes(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every node (containers and leaves), parents first."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from iter_nodes(v, _join(path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from iter_nodes(v, _join(path, i))


def _scalar_keys(value: Any) -> set[Any]:
    return {value_key(v) for _, v in iter_leaves(value) if not isinstance(v, dict | list)}


def _similarity(a_keys: set[Any], b_keys: set[Any]) -> float:
    if not a_keys and not b_keys:
        return 1.0
    return len(a_keys & b_keys) / max(len(a_keys), len(b_keys), 1)


#: Lists of different lengths larger than this (items × items) are compared by position.
_MAX_PAIRS = 4096


class _Pairs:
    """Which items of two lists of different lengths are the same item: the pairs that are each
    other's best match (an equal item beats a merely similar one) and share at least half of their
    scalar values.  Also remembers which ``t2`` items DeepDiff paired, see :meth:`_SameItem.unpaired`."""

    __slots__ = ("col_best", "dst_path", "paired", "pos1", "pos2", "row_best", "score", "t1", "t2")

    def __init__(self, t1: list[Any], t2: list[Any], dst_path: str) -> None:
        self.t1, self.t2, self.dst_path = t1, t2, dst_path
        k1 = [_scalar_keys(x) for x in t1]
        k2 = [_scalar_keys(y) for y in t2]
        self.score = [[2.0 if strict_equal(x, y) else _similarity(k1[i], k2[j]) for j, y in enumerate(t2)]
                      for i, x in enumerate(t1)]
        self.row_best = [max(row, default=0.0) for row in self.score]
        self.col_best = [max((row[j] for row in self.score), default=0.0) for j in range(len(t2))]
        # Items are known by identity (interned scalars share one: any of them has the same scores).
        self.pos1: dict[int, int] = {}
        for i, x in enumerate(t1):
            self.pos1.setdefault(id(x), i)
        self.pos2: dict[int, list[int]] = {}
        for j, y in enumerate(t2):
            self.pos2.setdefault(id(y), []).append(j)
        self.paired: set[int] = set()

    def same(self, x: Any, y: Any) -> bool:
        i = self.pos1[id(x)]
        # DeepDiff offers the unpaired t2 items in order: the first unpaired one with this identity.
        j = next(j for j in self.pos2[id(y)] if j not in self.paired)
        s = self.score[i][j]
        if s >= 0.5 and s == self.row_best[i] and s == self.col_best[j]:
            self.paired.add(j)
            return True
        return False


class _SameItem:
    """DeepDiff ``iterable_compare_func`` for one body pair.  Lists of equal length are compared
    position by position (raising ``CannotCompare`` tells DeepDiff to do so)."""

    def __init__(self) -> None:
        self.tables: dict[tuple[int, int], _Pairs] = {}

    def __call__(self, x: Any, y: Any, level: Any) -> bool:
        t1, t2 = level.t1, level.t2
        if len(t1) == len(t2) or len(t1) * len(t2) > _MAX_PAIRS:
            raise CannotCompare() from None
        key = (id(t1), id(t2))
        table = self.tables.get(key)
        if table is None:
            dst = _dotted(dst_path(level))
            table = self.tables[key] = _Pairs(t1, t2, dst)
        return table.same(x, y)

    def unpaired(self) -> Iterator[tuple[str, Any]]:
        """Every ``t2`` item of an aligned list that no ``t1`` item was paired with.  DeepDiff reports
        an unpaired item as added only when no equal item was paired, so a duplicated message would
        go unreported; the caller adds what DeepDiff left out."""
        for table in self.tables.values():
            for j, y in enumerate(table.t2):
                if j not in table.paired:
                    yield _join(table.dst_path, j), y


#: Top-level fields whose value is one choice written in a dialect-specific form.
_ATOMIC_ROOTS = frozenset({"tool_choice"})

_ADDED = ("dictionary_item_added", "iterable_item_added")
_REMOVED = ("dictionary_item_removed", "iterable_item_removed")
_CHANGED = ("values_changed", "type_changes")


def structural_diff(a: Any, b: Any, *, include_kept: bool = False) -> _Delta:
    """DeepDiff's view of ``a`` -> ``b`` as a :class:`_Delta` (bodies assumed unequal)."""
    d = _Delta()
    t1, t2 = a, b
    atomic: list[tuple[str, str, Any, Any]] = []
    if isinstance(a, dict) and isinstance(b, dict):
        # DeepDiff sees only the top-level keys that differ: equal subtrees are kept without it
        # (paths do not change, and document order is read from the whole bodies).
        t1, t2 = {}, {}
        for k, av in a.items():
            if k in b:
                bv = b[k]
                if av is bv or (av == bv and _same(av, bv)):
                    continue
                if k in _ATOMIC_ROOTS:
                    atomic.append((k, k, av, bv))  # judged as a whole (its forms differ per dialect)
                    continue
                t2[k] = bv
            t1[k] = av
        for k, bv in b.items():
            if k not in a:
                t2[k] = bv
    if isinstance(a, dict) and isinstance(b, dict) and _flat(t1, t2):
        # Only whole top-level values differ (ids, timestamps, a key on one side): nothing to
        # recurse into, so DeepDiff (~85 us a call) would only repeat the comparison made above.
        _flat_delta(d, a, b, t1, t2, atomic, include_kept)
        return d
    same_item = _SameItem()
    # threshold_to_diff_deeper=0: always report key by key, never a whole dict as one change;
    # ignore_private_variables=False: "__x" is a JSON key like any other; report_repetition=True:
    # keeps DeepDiff from merging a removed and an added list item that share an index into one
    # "change" of two unrelated items (it only matters with ignore_order otherwise).
    tree: Any = DeepDiff(t1, t2, view="tree", threshold_to_diff_deeper=0, ignore_private_variables=False,
                         report_repetition=True, iterable_compare_func=same_item) if t1 or t2 else {}

    removed = [(src_path(lv), lv.t1) for report in _REMOVED for lv in tree.get(report, ())]
    added = [(dst_path(lv), lv.t2) for report in _ADDED for lv in tree.get(report, ())]
    changed: list[tuple[list[Any], list[Any], Any, Any]] = []
    filled: list[str] = []
    for report in _CHANGED:
        for lv in tree.get(report, ()):
            va, vb = lv.t1, lv.t2
            if strict_equal(va, vb):
                continue  # 1 vs 1.0: a type change to DeepDiff, the same JSON number
            if va is None and isinstance(vb, dict | list):
                # An empty slot filled (`content: null` -> tool_use blocks): what fills it is added,
                # and value tracking can follow client values into it.
                added.append((dst_path(lv), vb))
                filled.append(_dotted(src_path(lv)))
            else:
                changed.append((src_path(lv), dst_path(lv), va, vb))
    # DeepDiff reports each kind in its own walk order; document order makes value tracking's
    # first-come claims independent of that.
    if len(removed) > 1:
        removed.sort(key=lambda e: _doc_order(a, e[0]))
    if len(added) > 1:
        added.sort(key=lambda e: _doc_order(b, e[0]))
    if len(changed) > 1:
        changed.sort(key=lambda e: _doc_order(a, e[0]))
    d.removed = [(_dotted(p), v) for p, v in removed]
    d.added = [(_dotted(p), v) for p, v in added]
    reported = {p for p, _ in d.added}
    d.added.extend((p, v) for p, v in same_item.unpaired() if p not in reported)
    d.changed = atomic + [(_dotted(pa), _dotted(pb), va, vb) for pa, pb, va, vb in changed]
    d.shifted = [(_dotted(src_path(lv)), _dotted(dst_path(lv)), lv.t1) for lv in tree.get("iterable_item_moved", ())]
    if include_kept:
        stop = {p for p, _ in d.removed} | {c[0] for c in d.changed} | set(filled)
        filled_dst = {_parent(p) for p, _ in d.added}  # empty containers that received items
        _kept_leaves(a, "", "", stop, {s: t for s, t, _ in d.shifted}, filled_dst, d.kept)
    return d


def _flat(t1: dict[str, Any], t2: dict[str, Any]) -> bool:
    """True when no differing top-level value needs a recursive diff."""
    for k, av in t1.items():
        if k in t2 and (isinstance(av, dict | list) or isinstance(t2[k], dict | list)):
            return False
    return True


def _flat_delta(d: _Delta, a: dict[str, Any], b: dict[str, Any], t1: dict[str, Any], t2: dict[str, Any],
                atomic: list[tuple[str, str, Any, Any]], include_kept: bool) -> None:
    """The delta of bodies that differ only in whole top-level values (see :func:`_flat`)."""
    d.removed = [(k, v) for k, v in t1.items() if k not in t2]
    d.added = [(k, v) for k, v in t2.items() if k not in t1]
    d.changed = list(atomic)
    for k, av in t1.items():
        if k in t2 and not strict_equal(av, t2[k]):
            d.changed.append((k, k, av, t2[k]))
    if include_kept:
        stop = {p for p, _ in d.removed} | {c[0] for c in d.changed}
        _kept_leaves(a, "", "", stop, {}, set(), d.kept)


def _level_path(level: Any, side: int) -> list[Any]:
    """The path of a DeepDiff tree level on one side (1: ``t1``, 2: ``t2``), read from its chain of
    child relationships.  (``level.path(output_format="list", reporting_move=True)`` gives the
    same, several times slower; without ``reporting_move`` DeepDiff swaps the t1/t2 indexes under
    a list where an item moved, a convenience for its Delta replay that is wrong for a report.)"""
    out: list[Any] = []
    lv = level.all_up
    while lv is not None and lv is not level:
        rel = (lv.t1_child_rel or lv.t2_child_rel) if side == 1 else (lv.t2_child_rel or lv.t1_child_rel)
        if rel is None:
            break
        out.append(rel.param)
        lv = lv.down
    return out


def src_path(level: Any) -> list[Any]:
    """The ``t1`` (before the gateway) path of a DeepDiff tree level."""
    return _level_path(level, 1)


def dst_path(level: Any) -> list[Any]:
    """The ``t2`` (after the gateway) path of a DeepDiff tree level."""
    return _level_path(level, 2)


def _doc_order(root: Any, path: list[Any]) -> tuple[int, ...]:
    """Position of a path in a document walk (dict keys in their order, list items by index)."""
    out: list[int] = []
    node = root
    for part in path:
        if isinstance(node, dict) and part in node:
            out.append(list(node).index(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        else:
            out.append(1 << 30)
            break
    return tuple(out)


def _kept_leaves(node: Any, src: str, dst: str, stop: set[str], shifted: dict[str, str], filled: set[str],
                 out: list[tuple[str, str, Any]]) -> None:
    """Leaves of ``a`` that no reported change covers, with their place in ``b`` (list items that
    moved carry their leaves along)."""
    if src in stop:
        return
    if isinstance(node, dict) and node:
        for k, v in node.items():
            _kept_leaves(v, _join(src, k), _join(dst, k), stop, shifted, filled, out)
    elif isinstance(node, list) and node:
        for i, v in enumerate(node):
            s = _join(src, i)
            _kept_leaves(v, s, shifted.get(s) or _join(dst, i), stop, shifted, filled, out)
    elif not (isinstance(node, dict | list) and dst in filled):
        out.append((src, dst, node))


def _same(a: Any, b: Any) -> bool:
    """Given ``a == b``: also equal as JSON (``true`` is not ``1``).  The C JSON encoder settles
    containers in microseconds; only when it disagrees (``1`` vs ``1.0``) is the slow check run."""
    if isinstance(a, dict | list):
        try:
            if json.dumps(a, separators=(",", ":")) == json.dumps(b, separators=(",", ":")):
                return True
        except (TypeError, ValueError):
            pass
    return strict_equal(a, b)


def _parent(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rsplit(".", 1)[0] if "." in path else ""


def _under(path: str, root: str) -> bool:
    if not root:
        return True
    return path == root or path.startswith(root + ".") or path.startswith(root + "[")


# --------------------------------------------------------------------------------------------
# Severity knowledge.
# --------------------------------------------------------------------------------------------

#: Request fields whose loss changes what the model does.
IMPORTANT_REQUEST_ROOTS = frozenset({
    "temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens", "max_output_tokens",
    "tools", "tool_choice", "system", "instructions", "stop", "stop_sequences", "messages", "input",
    "prompt", "response_format", "text", "seed", "n", "presence_penalty", "frequency_penalty",
    "logit_bias", "logprobs", "top_logprobs", "thinking", "reasoning", "reasoning_effort",
    "parallel_tool_calls", "output_format", "modalities",
})
#: Nested keys whose loss is a degradation, not a loss of meaning.
MINOR_NESTED_KEYS = frozenset({"cache_control", "citations", "annotations", "name", "id", "index", "signature"})
#: Response fields whose loss is a real loss to the client.
IMPORTANT_RESPONSE_KEYS = frozenset({
    "usage", "content", "text", "choices", "output", "output_text", "tool_calls", "arguments", "input",
    "finish_reason", "stop_reason", "status", "message", "function", "prompt_tokens", "completion_tokens",
    "total_tokens", "input_tokens", "output_tokens", "refusal",
})
_FINISH_KEYS = frozenset({"finish_reason", "stop_reason", "status"})
_INPUT_TOKEN_KEYS = frozenset({"input_tokens", "prompt_tokens"})
_EQUIVALENT_VALUE_KEYS = _FINISH_KEYS | _INPUT_TOKEN_KEYS
#: Role names that differ per dialect for the same turn.
_ROLE_EQUIVALENTS = {frozenset({"tool", "user"}), frozenset({"function", "user"}), frozenset({"developer", "system"})}
_VOLATILE_RESPONSE_KEYS = frozenset({"id", "created", "created_at", "completed_at", "model", "system_fingerprint"})
#: API defaults: dropping these values changes nothing.
_DEFAULTS: dict[str, Any] = {"stream": False, "n": 1, "logprobs": False, "parallel_tool_calls": True}


def _root(path: str) -> str:
    for i, ch in enumerate(path):
        if ch in ".[":
            return path[:i]
    return path


def is_default(path: str, value: Any) -> bool:
    if value is None or value == [] or value == {}:
        return True
    return "." not in path and "[" not in path and path in _DEFAULTS and strict_equal(_DEFAULTS[path], value)


def _path_keys(path: str) -> set[str]:
    return {part.split("[", 1)[0] for part in path.split(".")}


#: Top-level fields of a Responses answer that echo the request's settings (``text`` is the
#: format config there, not the reply): losing the echo costs the client nothing it asked for.
_RESPONSE_ECHO_ROOTS = frozenset({
    "text", "instructions", "tools", "tool_choice", "reasoning", "temperature", "top_p", "max_output_tokens",
    "parallel_tool_calls", "previous_response_id", "store", "truncation", "metadata", "user", "background",
    "max_tool_calls", "prompt_cache_key", "safety_identifier", "top_logprobs",
})


def _response_important(path: str) -> bool:
    if _root(path) in _RESPONSE_ECHO_ROOTS:
        return False
    return bool(_path_keys(path) & IMPORTANT_RESPONSE_KEYS)


def _leaf_values(value: Any) -> set[Any]:
    return {value_key(v) for _, v in iter_leaves(value) if not isinstance(v, dict | list)}


# --------------------------------------------------------------------------------------------
# The classifier.
# --------------------------------------------------------------------------------------------


class Translator:
    """Classifies a ``before`` body against an ``after`` body for one direction and dialect pair."""

    def __init__(self, side: Side, src_dialect: Dialect | None, dst_dialect: Dialect | None,
                 *, include_kept: bool = False) -> None:
        self.side = side
        self.src = src_dialect
        self.dst = dst_dialect
        self.include_kept = include_kept
        self.table = REQUEST_EQUIVALENCES if side == "request" else RESPONSE_EQUIVALENCES
        self._bodies: tuple[Any, Any] = (None, None)
        self._cache: set[int] | None = None

    # -- knowledge -------------------------------------------------------------------------
    def known(self, src_path: str, dst_path: str) -> str | None:
        """Concept name (or 'known rename') when src -> dst is a faithful translation (memoised:
        the same path pairs recur in every exchange of a run)."""
        key = (self.side, self.src, self.dst, src_path, dst_path)
        try:
            return _KNOWN_CACHE[key]
        except KeyError:
            pass
        if len(_KNOWN_CACHE) > 200_000:
            _KNOWN_CACHE.clear()
        result = _KNOWN_CACHE[key] = self._known(src_path, dst_path)
        return result

    def _known(self, src_path: str, dst_path: str) -> str | None:
        concept = _equivalent(self.side, self.src, src_path, self.dst, dst_path)
        if concept:
            return concept
        # A rename is only faithful when the upstream dialect has the new name at all
        # (`max_completion_tokens` sent to Anthropic is ignored there, not translated).
        if (self.side == "request" and is_known_translation(src_path, dst_path, self.src, self.dst)
                and (self.dst is None or _concept_of("request", self.dst, _generic(dst_path)) is not None)):
            return "known rename"
        if self.side == "response":
            from gatewaylens.dialects import KNOWN_RENAMES

            la, lb = last_key(src_path), last_key(dst_path)
            if la and lb and (la, lb) in KNOWN_RENAMES:
                return "known rename"
        return None

    def _values_match(self, src_path: str, dst_path: str, a: Any, b: Any) -> bool:
        if strict_equal(a, b):
            return True
        la, lb = last_key(src_path), last_key(dst_path)
        if la in _FINISH_KEYS and lb in _FINISH_KEYS:
            return finish_reasons_equivalent(self.src, a, self.dst, b)
        if la in _INPUT_TOKEN_KEYS and lb in _INPUT_TOKEN_KEYS and _is_count(a) and _is_count(b):
            return abs(a - b) in self._cache_counts
        return False

    @property
    def _cache_counts(self) -> set[int]:
        """Cache token counts of either body: OpenAI input counts include cached tokens, Anthropic's
        `input_tokens` exclude them, so a faithful translation differs by exactly these."""
        if self._cache is None:
            self._cache = (cache_counts(self._bodies[0]) | cache_counts(self._bodies[1])) - {0}
        return self._cache

    # -- main ------------------------------------------------------------------------------
    def compare(self, before: Any, after: Any) -> list[Entry]:
        self._bodies = (before, after)
        self._cache = None
        if before == after and _same(before, after):
            w = _Delta()
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
        self._track(w, out)
        for pa, pb, a, b in w.changed:
            out.append(self._changed(pa, pb, a, b))
        return out

    # -- value tracking ----------------------------------------------------------------------
    def _track(self, w: _Delta, out: list[Entry]) -> None:
        if not w.removed:
            out.extend(self._added(ap, av) for ap, av in w.added)
            return
        # Index every node of every added subtree by value: scalars at once, containers (and JSON
        # strings, parsed) only when a removed container is looked up, since that costs a dump each.
        index: dict[Any, list[str]] = {}
        added_nodes: dict[str, Any] = {}
        order: dict[str, int] = {}
        containers: list[tuple[str, Any]] = []

        def note(p: str, v: Any, rank: int) -> None:
            added_nodes[p] = v
            order[p] = rank
            if isinstance(v, dict | list):
                containers.append((p, v))
                return
            index.setdefault(value_key(v), []).append(p)
            if isinstance(v, str) and v[:1] in "{[" and len(v) >= 2:
                parsed = _maybe_json(v)
                if parsed is not None:
                    containers.append((p, parsed))

        for root, value in w.added:
            for p, v in iter_nodes(value, root):
                note(p, v, len(order))
        # Slots whose value changed can receive values too (a string reshaped into content blocks
        # that now also carry a tool_use_id); they rank after added places.
        for _pa, pb, _a, b in w.changed:
            if isinstance(b, dict | list):
                for p, v in iter_nodes(b, pb):
                    if p != pb:
                        note(p, v, len(order) + 1_000_000)
        container_index: dict[Any, list[str]] | None = None

        def lookup(key: Any) -> list[str]:
            nonlocal container_index
            if key[0] != "j":
                return index.get(key, [])
            if container_index is None:
                container_index = {}
                for p, v in containers:
                    container_index.setdefault(value_key(v), []).append(p)
            return container_index.get(key, [])

        claimed: list[str] = []
        claimed_set: set[str] = set()

        def usable(p: str) -> bool:
            if p in claimed_set:
                return False
            return not any(_under(p, c) or _under(c, p) for c in claimed)

        def find(src_path: str, value: Any) -> tuple[str, str | None] | None:
            keys = [value_key(value)]
            if isinstance(value, str) and value[:1] in "{[":
                parsed = _maybe_json(value)
                if parsed is not None:
                    keys.append(value_key(parsed))
            cands: list[str] = []
            for k in keys:
                cands.extend(c for c in lookup(k) if c not in cands)
            distinctive = _is_trackable(value)
            best: tuple[tuple[int, int, int], str, str | None] | None = None
            for c in cands:
                if not usable(c):
                    continue
                concept = self.known(src_path, c)
                if not distinctive and not concept:
                    continue
                rank = (0 if concept else 1, 0 if _parent(c) == _parent(src_path) else 1, order[c])
                if best is None or rank < best[0]:
                    best = (rank, c, concept)
            # Value-equivalent pairs the table knows (finish reasons, input tokens counted with or
            # without cache tokens) even when the values differ; a known pair outranks a bare value match.
            if last_key(src_path) in _EQUIVALENT_VALUE_KEYS and not isinstance(value, dict | list) and (
                    best is None or best[0][0] != 0):
                for c, v in added_nodes.items():
                    if usable(c) and not isinstance(v, dict | list) and self._values_match(src_path, c, value, v):
                        concept = self.known(src_path, c)
                        if concept:
                            return c, concept
            return (best[1], best[2]) if best else None

        def claim(p: str) -> None:
            claimed.append(p)
            claimed_set.add(p)

        def children(path: str, value: Any) -> Iterator[tuple[str, Any]]:
            if isinstance(value, dict):
                for k, v in value.items():
                    yield _join(path, k), v
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    yield _join(path, i), v

        def track(path: str, value: Any, entries: list[Entry], rest: list[tuple[str, Any]]) -> None:
            """Whole subtree first; failing that, its children, so `parameters` moves as one."""
            hit = find(path, value)
            if hit:
                claim(hit[0])
                entries.append(self._moved(path, hit[0], value, added_nodes[hit[0]], hit[1]))
            elif isinstance(value, dict | list) and value:
                for cp, cv in children(path, value):
                    track(cp, cv, entries, rest)
            else:
                rest.append((path, value))

        unmatched_removed: list[tuple[str, Any]] = []
        tracked_sources: list[str] = []
        for rp, rv in w.removed:
            entries: list[Entry] = []
            rest: list[tuple[str, Any]] = []
            track(rp, rv, entries, rest)
            if entries:
                out.extend(entries)
                tracked_sources.extend(e.src_path or "" for e in entries)
                for lp, lv in rest:
                    if last_key(lp) in STRUCTURAL_KEYS and not is_distinctive(lv):
                        continue  # e.g. the "role" of a system message moved into `system`
                    out.append(self._dropped(lp, lv))
            else:
                unmatched_removed.append((rp, rv))
        # A structural leaf (`type: "function"`) whose siblings moved went with them.
        unmatched_removed = [
            (rp, rv) for rp, rv in unmatched_removed
            if not (last_key(rp) in STRUCTURAL_KEYS and not is_distinctive(rv)
                    and any(_under(t, _parent(rp)) for t in tracked_sources))
        ]

        # Concept-level translations whose value was converted (reasoning_effort -> thinking budget).
        leftover_added = [(p, v) for p, v in w.added if usable(p)]
        for rp, rv in unmatched_removed:
            match = None
            if "[" not in rp:
                for ap, av in leftover_added:
                    if not usable(ap) or "[" in ap:
                        continue
                    concept = _equivalent(self.side, self.src, rp, self.dst, ap) if self.src != self.dst else None
                    if concept is None:
                        for np, _nv in iter_nodes(av, ap):
                            concept = _equivalent(self.side, self.src, rp, self.dst, np) if self.src != self.dst else None
                            if concept:
                                break
                    if concept:
                        match = (ap, av, concept)
                        break
            if match:
                ap, av, concept = match
                claim(ap)
                kind: Kind = "renamed" if _parent(ap) == _parent(rp) else "moved"
                out.append(Entry(kind, rp, ap, rv, av, "info",
                                 f"translated as '{concept}' with a converted value: {excerpt(rv)} -> {excerpt(av)}",
                                 concept))
            else:
                out.append(self._dropped(rp, rv))

        # What is left of the added subtrees.
        for ap, av in w.added:
            if ap in claimed_set:
                continue
            inner = [c for c in claimed if _under(c, ap)]
            if not inner:
                if last_key(ap) in STRUCTURAL_KEYS and not is_distinctive(av) and any(
                        _under(c, _parent(ap)) for c in claimed):
                    continue
                out.append(self._added(ap, av))
                continue
            for lp, lv in iter_leaves(av, ap):
                if any(_under(lp, c) for c in inner):
                    continue
                if last_key(lp) in STRUCTURAL_KEYS:
                    continue
                out.append(self._added(lp, lv))

    # -- entries -----------------------------------------------------------------------------
    def _moved(self, sp: str, dp: str, before: Any, after: Any, concept: str | None) -> Entry:
        kind: Kind = "renamed" if _parent(sp) == _parent(dp) else "moved"
        same = strict_equal(before, after)
        how = "same value" if same else "equivalent value"
        if concept:
            label = "" if concept == "known rename" else f" ('{concept}')"
            return Entry(kind, sp, dp, before, after, "info",
                         f"faithful translation{label}: {sp} -> {dp}, {how}", None if concept == "known rename" else concept)
        if _generic(sp) == _generic(dp):
            return Entry("moved", sp, dp, before, after, "info", f"{how} at another list position: {sp} -> {dp}")
        return Entry(kind, sp, dp, before, after, "warn",
                     f"{kind} {sp} -> {dp} ({how}); not a translation the dialect table knows")

    def _dropped(self, path: str, value: Any) -> Entry:
        concept = self._concept(path)
        if is_default(path, value):
            return Entry("dropped", path, None, value, None, "info",
                         f"{excerpt(value)} omitted: equivalent to leaving the field out", concept)
        if self.side == "request":
            root = _root(path)
            nested_minor = path != root and bool(_path_keys(path) & MINOR_NESTED_KEYS)
            if root in IMPORTANT_REQUEST_ROOTS and not nested_minor:
                extra = ""
                if self.src != self.dst and concept is None and "." not in path and "[" not in path:
                    extra = f" (no {self.dst} equivalent)"
                return Entry("dropped", path, None, value, None, "error",
                             f"semantically important field lost{extra}", concept)
            if self.src != self.dst and not self._has_place(path):
                return Entry("dropped", path, None, value, None, "info",
                             f"not forwarded: the {self.dst} dialect has no equivalent", concept)
            return Entry("dropped", path, None, value, None, "warn", "not forwarded upstream", concept)
        if self.src != self.dst and not self._has_place(path):
            return Entry("dropped", path, None, value, None, "info",
                         f"the {self.dst} dialect has no place for this field", concept)
        if _response_important(path) and _root(path) != "error":
            return Entry("dropped", path, None, value, None, "error", "lost on the way back to the client", concept)
        return Entry("dropped", path, None, value, None, "warn", "upstream field not passed to the client", concept)

    def _added(self, path: str, value: Any) -> Entry:
        if self.side == "request":
            return Entry("added", None, path, None, value, "info", "added by the gateway (default or dialect requirement)",
                         self._concept(path, dst=True))
        return Entry("added", None, path, None, value, "info", "added by the gateway on the way back",
                     self._concept(path, dst=True))

    def _changed(self, sp: str, dp: str, a: Any, b: Any) -> Entry:
        key = last_key(sp)
        concept = self._concept(sp)
        if self.side == "request" and _root(sp) == "model":
            return Entry("changed", sp, dp, a, b, "info", "model name mapped by the gateway's route", "model")
        if key == "tool_choice" or _root(sp) == "tool_choice":
            ma, mb = tool_choice_mode(self.src, a), tool_choice_mode(self.dst, b)
            if ma is not None and ma == mb:
                return Entry("changed", sp, dp, a, b, "info", f"tool choice '{ma}' written in the {self.dst} form", "tool choice")
        if self._values_match(sp, dp, a, b):
            return Entry("changed", sp, dp, a, b, "info", f"equivalent value: {excerpt(a)} -> {excerpt(b)}", concept)
        if key == "role" and isinstance(a, str) and isinstance(b, str) and frozenset({a, b}) in _ROLE_EQUIVALENTS:
            return Entry("changed", sp, dp, a, b, "info", f"role '{a}' written as '{b}' in the {self.dst} dialect", concept)
        if self.side == "response" and _root(sp) == "error":
            return Entry("changed", sp, dp, a, b, "warn", f"error detail changed: {excerpt(a)} -> {excerpt(b)}", concept)
        if isinstance(a, dict | list) or isinstance(b, dict | list) or type(a) is not type(b):
            va, vb = _leaf_values(a), _leaf_values(b)
            if va and (va <= vb or vb <= va) and _significant(va & vb):
                return Entry("changed", sp, dp, a, b, "info",
                             f"reshaped ({_type(a)} -> {_type(b)}), value preserved", concept)
            if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) and not isinstance(b, bool):
                pass
            else:
                return Entry("changed", sp, dp, a, b, "warn", f"type changed ({_type(a)} -> {_type(b)})", concept)
        if self.side == "response":
            if self.src != self.dst and key in ("object", "type") and "[" not in sp:
                return Entry("changed", sp, dp, a, b, "info", f"object type of the {self.dst} dialect", concept)
            if key in _VOLATILE_RESPONSE_KEYS:
                return Entry("changed", sp, dp, a, b, "info", f"{key} rewritten by the gateway", concept)
            if _response_important(sp):
                return Entry("changed", sp, dp, a, b, "error", f"value changed: {excerpt(a)} -> {excerpt(b)}", concept)
        return Entry("changed", sp, dp, a, b, "warn", f"value changed: {excerpt(a)} -> {excerpt(b)}", concept)

    def _has_place(self, path: str) -> bool:
        """Whether the destination dialect has a field for this source path's concept."""
        concept = self._concept(path)
        if concept is None:
            return False
        for row in self.table:
            if row["concept"] == concept:
                return bool(row.get(self.dst or "", []))
        return False

    def _concept(self, path: str, *, dst: bool = False) -> str | None:
        dialect = self.dst if dst else self.src
        if dialect is None:
            return None
        return _concept_of(self.side, dialect, _generic(path))


_generic = lru_cache(maxsize=65536)(generic_path)
_KNOWN_CACHE: dict[tuple[str, str | None, str | None, str, str], str | None] = {}


@lru_cache(maxsize=65536)
def _equivalent(side: str, src: Dialect | None, src_path: str, dst: Dialect | None, dst_path: str) -> str | None:
    table = REQUEST_EQUIVALENCES if side == "request" else RESPONSE_EQUIVALENCES
    return equivalent_concept(table, src, src_path, dst, dst_path)


@lru_cache(maxsize=65536)
def _concept_of(side: str, dialect: Dialect, gp: str) -> str | None:
    table = REQUEST_EQUIVALENCES if side == "request" else RESPONSE_EQUIVALENCES
    for row in table:
        if gp in row.get(dialect, []):
            return str(row["concept"])
    return None


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


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


def _significant(keys: set[Any]) -> bool:
    return any(is_distinctive(k[1]) for k in keys if isinstance(k, tuple) and k[0] in ("s", "n"))


def _is_trackable(value: Any) -> bool:
    if isinstance(value, dict | list):
        return bool(value) and any(is_distinctive(v) for _, v in iter_leaves(value))
    return is_distinctive(value)


def _maybe_json(text: str) -> Any | None:
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict | list) else None


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
    """Shift entries carry small items whole and leave big ones out (their leaves are reported)."""
    if isinstance(v, dict | list):
        text = json.dumps(v, ensure_ascii=False, separators=(",", ":"))
        return v if len(text) <= 160 else None
    return v
