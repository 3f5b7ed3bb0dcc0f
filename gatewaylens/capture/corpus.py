"""Loading and validating the corpus (and other capture input files) with one-line errors.

Every problem in an input file becomes one :class:`InputError` whose message is a single line
naming the file, the item (case id when it has a usable one, else ``#index``) and the field, e.g.::

    corpus.json: case 'chat-basic': stream: stream is true but body.stream is None

The CLI prints that line and exits 2 before any traffic is sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gatewaylens.capture.models import Case, Corpus
from gatewaylens.errors import first_error, one_line

#: Refuse absurd inputs early rather than exhausting memory on a fuzzed file.
MAX_INPUT_BYTES = 64 * 1024 * 1024

M = TypeVar("M", bound=BaseModel)


class InputError(Exception):
    """A bad input file or option; ``str(err)`` is the single line to print (exit code 2)."""


@dataclass
class LoadedCorpus:
    corpus: Corpus
    path: Path
    sha256: str


def read_json_file(path: Path, label: str) -> tuple[Any, bytes]:
    """Read and parse a JSON file; every failure is one :class:`InputError` line."""
    try:
        if path.is_dir():
            raise InputError(f"{label}: is a directory, not a JSON file")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{label}: file not found") from None
    except OSError as e:
        raise InputError(f"{label}: cannot read: {one_line(e.strerror or str(e))}") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise InputError(f"{label}: file too large ({len(raw)} bytes, limit {MAX_INPUT_BYTES})")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{label}: not valid UTF-8 (byte {e.start})") from None
    if not text.strip():
        raise InputError(f"{label}: empty file, expected JSON")
    try:
        return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant), raw
    except json.JSONDecodeError as e:
        raise InputError(f"{label}: invalid JSON: {one_line(e.msg)} (line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise InputError(f"{label}: invalid JSON: nested too deeply") from None
    except ValueError as e:  # an integer beyond Python's digit limit, or a non-finite number
        raise InputError(f"{label}: invalid JSON: {one_line(str(e), 160)}") from None


def _finite_float(text: str) -> float:
    """JSON numbers must be finite: ``1e999`` would be sent on as ``Infinity``, which is not JSON."""
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range (not finite)")
    return value


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not valid JSON (NaN/Infinity are not allowed)")


def _item_label(kind: str, raw: Any, index: int, key: str) -> str:
    ident = raw.get(key) if isinstance(raw, dict) else None
    if isinstance(ident, str) and ident and len(ident) <= 100 and ident.isprintable():
        return f"{kind} '{ident}'"
    return f"{kind} #{index}"


def validate_items(items: Sequence[Any], model: type[M], label: str, kind: str, key: str,
                   default_field: str = "(item)") -> list[M]:
    """Validate a list of items one by one so an error names the item; duplicates of ``key`` refused."""
    out: list[M] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(items):
        where = _item_label(kind, raw, i, key)
        if not isinstance(raw, dict):
            raise InputError(f"{label}: {where}: expected an object, got {type(raw).__name__}")
        try:
            item = model.model_validate(raw)
        except ValidationError as e:
            field, msg = first_error(e, default_field)
            raise InputError(f"{label}: {where}: {field}: {msg}") from None
        ident = str(getattr(item, key))
        if ident in seen:
            raise InputError(f"{label}: {where}: {key}: duplicate {key} (first used by {kind} #{seen[ident]})")
        seen[ident] = i
        out.append(item)
    return out


def load_corpus(path: Path, label: str | None = None) -> LoadedCorpus:
    """Load and validate a corpus file.

    Accepts ``{"version":..., "description":..., "cases":[...]}`` or a bare list of cases.
    """
    label = label or str(path)
    data, raw = read_json_file(path, label)
    if isinstance(data, list):
        data = {"cases": data}
    if not isinstance(data, dict):
        raise InputError(f"{label}: expected an object with a 'cases' list, got {type(data).__name__}")
    if "cases" not in data:
        raise InputError(f"{label}: cases: field required")
    cases_raw = data["cases"]
    if not isinstance(cases_raw, list):
        raise InputError(f"{label}: cases: expected a list, got {type(cases_raw).__name__}")
    if not cases_raw:
        raise InputError(f"{label}: cases: the corpus has no cases")
    # A model-level check (stream vs body.stream) has no location of its own: name the field.
    cases = validate_items(cases_raw, Case, label, "case", "id", default_field="stream")
    top = {k: v for k, v in data.items() if k != "cases"}
    try:
        corpus = Corpus.model_validate({**top, "cases": []})
    except ValidationError as e:
        field, msg = first_error(e, "(corpus)")
        raise InputError(f"{label}: {field}: {msg}") from None
    corpus.cases = cases
    return LoadedCorpus(corpus=corpus, path=path, sha256=hashlib.sha256(raw).hexdigest())
