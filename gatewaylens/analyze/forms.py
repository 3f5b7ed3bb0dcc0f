"""Other forms of one value: what a gateway may turn a value into without changing its meaning.

Value tracking (``translate.py``) indexes every value the gateway added under each of its forms,
and looks every value the gateway removed up under each of its forms, so that a base64 image
payload found again inside a data URL, or a tool-call ``arguments`` string found again as an
``input`` object, is the conversion it is rather than a drop plus an add.

Each form has a name (said in the finding) and a flag: ``faithful`` forms are conversions
(kind ``converted``, severity ``info``); a number written as a numeric string is a type
coercion (kind ``changed``, severity ``warn``): the API may or may not accept it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gatewaylens.analyze.values import value_key

_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*);base64,(.+)$", re.S)
_NUMERIC = re.compile(r"^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


@dataclass(frozen=True, slots=True)
class Form:
    name: str
    faithful: bool


SAME = Form("same value", True)
DATA_URL_PAYLOAD = Form("base64 payload of a data URL", True)
JSON_TEXT = Form("JSON text of the same object", True)
NUMERIC_TEXT = Form("number written as a string", False)


def data_url_parts(value: str) -> tuple[str | None, str] | None:
    """``data:image/png;base64,AAAA`` -> ``("image/png", "AAAA")``."""
    if not value.startswith("data:"):
        return None
    m = _DATA_URL.match(value)
    if m is None:
        return None
    return m.group(1), m.group(3)


def parse_json_text(value: str) -> Any | None:
    """The object or list a string holds as JSON text, else None."""
    text = value.strip()
    if len(text) < 2 or text[0] not in "{[":
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict | list) else None


def forms(value: Any) -> Iterator[tuple[Any, Form]]:
    """``(value key, form)`` of every form of a *scalar or container* value, itself first.

    A string yields the key of the base64 payload it carries as a data URL, the key of the
    object it holds as JSON text, the key of the number it spells; a number yields the key of
    its string spellings.  Keys are :func:`gatewaylens.analyze.values.value_key` keys.
    """
    yield value_key(value), SAME
    if isinstance(value, str):
        parts = data_url_parts(value)
        if parts is not None:
            yield value_key(parts[1]), DATA_URL_PAYLOAD
        parsed = parse_json_text(value)
        if parsed is not None:
            yield value_key(parsed), JSON_TEXT
        if _NUMERIC.match(value.strip()):
            try:
                num = float(value)
            except ValueError:
                num = math.nan
            if math.isfinite(num):
                yield value_key(num), NUMERIC_TEXT
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        yield value_key(str(value)), NUMERIC_TEXT
        if isinstance(value, float) and value.is_integer():
            yield value_key(str(int(value))), NUMERIC_TEXT


def semantically_equal(a: Any, b: Any) -> bool:
    """Equal once JSON text is read as JSON (``'{"a":1,"b":2}'`` == ``'{"b": 2, "a": 1}'``): a
    re-serialisation (key order, spacing, escaping) is no change."""
    if isinstance(a, str) and isinstance(b, str):
        pa, pb = parse_json_text(a), parse_json_text(b)
        if pa is not None and pb is not None:
            return bool(value_key(pa) == value_key(pb))
    return False


def converted_form(a: Any, b: Any) -> Form | None:
    """The form under which ``b`` carries ``a``: ``SAME``, an encoding of ``a``, ``a`` being the
    encoding of ``b``, or ``None`` when ``b`` does not carry ``a`` at all."""
    kb = value_key(b)
    for k, f in forms(a):
        if k == kb:
            return f
    ka = value_key(a)
    for k, f in forms(b):
        if k == ka:
            return f
    return None
