"""The structural diff of one body pair, by DeepDiff: what was removed, added or changed in place,
which list items moved, and which lists are the same items in another order.

Lists of different lengths are aligned item by item through DeepDiff's ``iterable_compare_func``
(:class:`_SameItem` says which items are the same item), so a system message inserted at
``messages[0]`` shifts the conversation instead of "changing" every message.  Lists of equal
length whose items are a permutation of each other are reported once as ``reordered`` and then
compared in the client's order, so a permutation is one finding, not one per item.

DeepDiff costs ~0.1 ms per call plus ~10 microseconds per node it visits, so it is called once per
body pair, only when the bodies differ, and only on the top-level keys whose values differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import CannotCompare

from gatewaylens.analyze.paths import dotted as _dotted
from gatewaylens.analyze.paths import iter_leaves
from gatewaylens.analyze.paths import join as _join
from gatewaylens.analyze.paths import parent as _parent
from gatewaylens.analyze.values import strict_equal, value_key


@dataclass(slots=True)
class Delta:
    """DeepDiff's report of one body pair in the classifier's terms (dotted paths, ``src`` side
    first): what stayed, which list items moved, what was removed, added or changed in place."""

    kept: list[tuple[str, str, Any]] = field(default_factory=list)
    shifted: list[tuple[str, str, Any]] = field(default_factory=list)
    removed: list[tuple[str, Any]] = field(default_factory=list)
    added: list[tuple[str, Any]] = field(default_factory=list)
    changed: list[tuple[str, str, Any, Any]] = field(default_factory=list)
    #: ``(path, client order, upstream order)`` of lists whose items were only reordered.
    reordered: list[tuple[str, list[Any], list[Any]]] = field(default_factory=list)


#: Strings this long are free text (a message, a prompt), shorter ones keywords (roles, block types,
#: ``ephemeral``).  Free text weighs more when items are paired: two messages that share their text
#: are the same message in another form, two that share only ``type: text`` and a cache marker are not.
_FREE_TEXT_LEN = 16
_FREE_TEXT_WEIGHT = 4.0


def _weight(value: Any) -> float:
    return _FREE_TEXT_WEIGHT if isinstance(value, str) and len(value) >= _FREE_TEXT_LEN else 1.0


def _scalar_keys(value: Any) -> dict[Any, float]:
    return {value_key(v): _weight(v) for _, v in iter_leaves(value) if not isinstance(v, dict | list)}


def _similarity(a_keys: dict[Any, float], b_keys: dict[Any, float]) -> float:
    """Weighted share of the scalar values two items have in common (free text weighs more)."""
    if not a_keys and not b_keys:
        return 1.0
    shared = sum(w for k, w in a_keys.items() if k in b_keys)
    return shared / max(sum(a_keys.values()), sum(b_keys.values()), 1.0)


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


def structural_diff(a: Any, b: Any, *, include_kept: bool = False) -> Delta:
    """DeepDiff's view of ``a`` -> ``b`` as a :class:`Delta` (bodies assumed unequal)."""
    d = Delta()
    t1, t2 = a, b
    atomic: list[tuple[str, str, Any, Any]] = []
    if isinstance(a, dict) and isinstance(b, dict):
        # DeepDiff sees only the top-level keys that differ: equal subtrees are kept without it
        # (paths do not change, and document order is read from the whole bodies).
        t1, t2 = {}, {}
        for k, av in a.items():
            if k in b:
                bv = b[k]
                if av is bv or (av == bv and same_json(av, bv)):
                    continue
                if k in _ATOMIC_ROOTS:
                    atomic.append((k, k, av, bv))  # judged as a whole (its forms differ per dialect)
                    continue
                t2[k] = bv
            t1[k] = av
        for k, bv in b.items():
            if k not in a:
                t2[k] = bv
    if isinstance(t1, dict) and isinstance(t2, dict) and t1 and t2:
        # A list whose items were only put in another order is one `reordered`, then compared in
        # the client's order (else every position would "change").
        for k in list(t2):
            if k in t1:
                t2[k] = _restore_order(t1[k], t2[k], k, d.reordered)
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


def _canon(v: Any) -> str:
    return json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _restore_order(a: Any, b: Any, path: str, out: list[tuple[str, list[Any], list[Any]]]) -> Any:
    """``b`` with every list that is a permutation of its counterpart in ``a`` put back in ``a``'s
    order (``b`` itself when nothing was reordered; only changed branches are copied)."""
    if isinstance(a, dict) and isinstance(b, dict):
        new: dict[str, Any] | None = None
        for k, bv in b.items():
            if k in a and a[k] is not bv and isinstance(bv, dict | list):
                nv = _restore_order(a[k], bv, _join(path, k), out)
                if nv is not bv:
                    if new is None:
                        new = dict(b)
                    new[k] = nv
        return b if new is None else new
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and len(a) > 1:
        ca, cb = [_canon(x) for x in a], [_canon(y) for y in b]
        if ca != cb and sorted(ca) == sorted(cb):
            out.append((path, a, b))
            return list(a)
        new_list: list[Any] | None = None
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x is not y and isinstance(y, dict | list):
                ny = _restore_order(x, y, _join(path, i), out)
                if ny is not y:
                    if new_list is None:
                        new_list = list(b)
                    new_list[i] = ny
        return b if new_list is None else new_list
    return b


def _flat(t1: dict[str, Any], t2: dict[str, Any]) -> bool:
    """True when no differing top-level value needs a recursive diff."""
    for k, av in t1.items():
        if k in t2 and (isinstance(av, dict | list) or isinstance(t2[k], dict | list)):
            return False
    return True


def _flat_delta(d: Delta, a: dict[str, Any], b: dict[str, Any], t1: dict[str, Any], t2: dict[str, Any],
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


def same_json(a: Any, b: Any) -> bool:
    """Given ``a == b``: also equal as JSON (``true`` is not ``1``).  The C JSON encoder settles
    containers in microseconds; only when it disagrees (``1`` vs ``1.0``) is the slow check run."""
    if isinstance(a, dict | list):
        try:
            if json.dumps(a, separators=(",", ":")) == json.dumps(b, separators=(",", ":")):
                return True
        except (TypeError, ValueError):
            pass
    return strict_equal(a, b)
