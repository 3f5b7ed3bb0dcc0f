"""Dotted paths, one module for every stage of analyze: ``messages[0].content[1].text``.

A path is the chain of dict keys and list indexes from a body's root, written with ``.`` between
keys and ``[i]`` for indexes.  A *generic* path writes every index as ``[*]`` (behaviours,
expectations) or ``[]`` (the dialect equivalence tables).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from gatewaylens.dialects import generic_path as _table_generic

_INDEX = re.compile(r"\[\d+\]")


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def dotted(parts: list[Any]) -> str:
    out = ""
    for part in parts:
        out = join(out, part if isinstance(part, int) else str(part))
    return out


def parent(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rsplit(".", 1)[0] if "." in path else ""


def under(path: str, root: str) -> bool:
    """``path`` is ``root`` or inside it (the empty root holds everything)."""
    if not root:
        return True
    return path == root or path.startswith(root + ".") or path.startswith(root + "[")


def root(path: str) -> str:
    for i, ch in enumerate(path):
        if ch in ".[":
            return path[:i]
    return path


@lru_cache(maxsize=65536)
def last_key(path: str) -> str | None:
    """The last key of a dotted path (``usage.total_tokens`` -> ``total_tokens``; a trailing index
    dropped: ``stop[0]`` -> ``stop``); None for a bare index."""
    stripped = re.sub(r"\[\d+\]$", "", path)
    if not stripped:
        return None
    return stripped.rsplit(".", 1)[-1]


def star(path: str) -> str:
    """``messages[3].content[0]`` -> ``messages[*].content[*]``."""
    return _INDEX.sub("[*]", path)


#: ``messages[3].content`` -> ``messages[].content`` (the equivalence tables' form), memoised.
table_generic = lru_cache(maxsize=65536)(_table_generic)


def item_prefix(path: str) -> str | None:
    """The path of the top-level list item a path lies in: ``messages[2].content[0].text`` ->
    ``messages[2]``; None when the path is not inside a list."""
    i = path.find("[")
    if i < 0:
        return None
    j = path.find("]", i)
    return path[: j + 1] if j > 0 else None


def matches(pattern: str, path: str) -> bool:
    """A generic pattern (``[*]`` for any index) matches the path or a parent of it."""
    rx = _pattern(pattern)
    return rx.match(path) is not None


@lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern[str]:
    body = re.escape(pattern).replace(r"\[\*\]", r"\[\d+\]")
    return re.compile(rf"^{body}(?:$|[.\[])")


def iter_leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf (scalar, empty object, empty list) of a JSON value with its dotted path."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from iter_leaves(v, join(path, k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from iter_leaves(v, join(path, i))
    else:
        yield path, value


def iter_nodes(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every node (containers and leaves), parents first."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from iter_nodes(v, join(path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from iter_nodes(v, join(path, i))


def get(body: Any, path: str) -> Any:
    """The value at a dotted path, or a sentinel :data:`MISSING`."""
    node = body
    for part in _PARTS.findall(path):
        if part.startswith("["):
            idx = int(part[1:-1])
            if not isinstance(node, list) or not 0 <= idx < len(node):
                return MISSING
            node = node[idx]
        else:
            key = part.lstrip(".")
            if not isinstance(node, dict) or key not in node:
                return MISSING
            node = node[key]
    return node


_PARTS = re.compile(r"\[\d+\]|\.?[^.\[]+")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
