"""Loading and validating the corpus (and other capture input files) with one-line errors.

Every problem in an input file becomes one :class:`InputError` whose message is a single line
naming the file, the item (case id when it has a usable one, else ``#index``) and the field, e.g.::

    corpus.json: case 'chat-basic': stream: stream is true but body.stream is None

The CLI prints that line and exits 2 before any traffic is sent.

A corpus is one JSON file or a directory of them (``corpus.d/`` style: every ``*.json`` in it, in
name order, merged); several paths merge the same way.  Case ids are unique across every file; an
error names the file the case came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gatewaylens.capture.models import Case, Corpus
from gatewaylens.datafiles import data_path
from gatewaylens.errors import InputError as InputError  # the older home of the name, still imported
from gatewaylens.errors import first_error, one_line
from gatewaylens.formats import CORPUS_FORMAT_VERSION, version_problem
from gatewaylens.turns import check_turn

#: Refuse absurd inputs early rather than exhausting memory on a fuzzed file.
MAX_INPUT_BYTES = 64 * 1024 * 1024

M = TypeVar("M", bound=BaseModel)


@dataclass
class LoadedCorpus:
    corpus: Corpus
    path: Path
    sha256: str
    #: every path given (files and directories), in order; ``path`` is the first
    paths: list[Path] = field(default_factory=list)
    #: which file each case came from (case id -> file label)
    origin: dict[str, str] = field(default_factory=dict)

    def copy_text(self) -> str:
        """What a run directory keeps as ``corpus.json``: the file itself when the corpus is one file,
        else the merged corpus."""
        if len(self.paths) <= 1 and not self.path.is_dir():
            return self.path.read_text(encoding="utf-8")
        return self.merged_json()

    def merged_json(self) -> str:
        """The whole corpus as one JSON document (what a run directory keeps as ``corpus.json``)."""
        return self.corpus.model_dump_json(indent=1, exclude_defaults=True) + "\n"


#: Where the default corpus lives: ``corpus.json`` in the current directory and, when present, the
#: directory beside it; without one, the corpus shipped with gatewaylens.
DEFAULT_CORPUS = Path("corpus.json")
DEFAULT_CORPUS_DIR = Path("corpus.d")


def shipped_corpus_paths() -> list[Path]:
    """The corpus shipped with gatewaylens (in the package, or the checkout it runs from):
    ``corpus.json`` plus ``corpus.d/`` (the reported-bug pack and the conversation cases)."""
    main = data_path("corpus.json")
    extra = data_path("corpus.d")
    if not main.is_file():
        raise InputError(f"{main}: the shipped corpus is missing from this installation (reinstall gatewaylens)")
    return [main, *([extra] if extra.is_dir() else [])]


def default_corpus_paths() -> list[Path]:
    """``corpus.json`` (plus ``corpus.d/`` when that directory exists) in the current directory,
    else the shipped corpus, so ``capture`` works from any directory."""
    if not DEFAULT_CORPUS.exists():
        return shipped_corpus_paths()
    return [DEFAULT_CORPUS, *([DEFAULT_CORPUS_DIR] if DEFAULT_CORPUS_DIR.is_dir() else [])]


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


def check_conversation(case: Case, label: str) -> None:
    """A conversation's turn templates: every reference parses, points at an earlier turn, and at
    something that turn's answer (or sent body) can hold.  One line naming case, turn and field."""
    if not case.turns:
        return
    templates = [t.body for t in case.turns]
    for i, t in enumerate(case.turns):
        problem = check_turn(t.body, i + 1, case.dialect, templates[:i])
        if problem:
            where, msg = problem
            raise InputError(f"{label}: case '{case.id}': turn {i + 1}: turns[{i}].body.{where}: {msg}")


def _corpus_document(path: Path, label: str) -> tuple[dict[str, Any], bytes]:
    data, raw = read_json_file(path, label)
    if isinstance(data, list):
        data = {"cases": data}
    if not isinstance(data, dict):
        raise InputError(f"{label}: expected an object with a 'cases' list, got {type(data).__name__}")
    problem = version_problem(data.get("version"), CORPUS_FORMAT_VERSION, "corpus", field="version")
    if problem is not None:  # checked per file: every file of a corpus directory carries its own
        raise InputError(f"{label}: {problem}")
    if "cases" not in data:
        raise InputError(f"{label}: cases: field required")
    if not isinstance(data["cases"], list):
        raise InputError(f"{label}: cases: expected a list, got {type(data['cases']).__name__}")
    return data, raw


def _corpus_files(path: Path, label: str) -> list[tuple[Path, str]]:
    """A file is itself; a directory is every ``*.json`` directly in it, in name order."""
    if not path.is_dir():
        return [(path, label)]
    try:
        files = sorted(p for p in path.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
    except OSError as e:
        raise InputError(f"{label}: cannot read directory: {one_line(e.strerror or str(e))}") from None
    if not files:
        raise InputError(f"{label}: directory holds no *.json corpus file")
    return [(f, f"{label.rstrip('/')}/{f.name}") for f in files]


def load_corpus(path: Path | Sequence[Path], label: str | None = None) -> LoadedCorpus:
    """Load and validate a corpus: a file, a directory of ``*.json`` files, or several of either.

    Each file holds ``{"version":..., "description":..., "cases":[...]}`` or a bare list of cases.
    Ids must be unique across all files; the top-level fields of the first file are kept.
    """
    paths = [path] if isinstance(path, Path) else list(path)
    if not paths:
        raise InputError("--corpus: no corpus given")
    files: list[tuple[Path, str]] = []
    for i, p in enumerate(paths):
        files.extend(_corpus_files(p, label if (label and i == 0) else str(p)))
    digest = hashlib.sha256()
    cases: list[Case] = []
    origin: dict[str, str] = {}
    top: dict[str, Any] | None = None
    top_label = files[0][1]
    raws: list[bytes] = []
    for fpath, flabel in files:
        data, raw = _corpus_document(fpath, flabel)
        if not data["cases"]:
            raise InputError(f"{flabel}: cases: the corpus has no cases")
        raws.append(raw)
        digest.update(f"{fpath.name}\0{len(raw)}\0".encode())
        digest.update(raw)
        # A model-level check (stream vs body.stream) has no location of its own: name the field.
        for case in validate_items(data["cases"], Case, flabel, "case", "id", default_field="stream"):
            if case.id in origin:
                where = "earlier in this file" if origin[case.id] == flabel else f"also in {origin[case.id]}"
                raise InputError(f"{flabel}: case '{case.id}': id: duplicate id ({where})")
            origin[case.id] = flabel
            check_conversation(case, flabel)
            cases.append(case)
        if top is None:
            top = {k: v for k, v in data.items() if k != "cases"}
    try:
        corpus = Corpus.model_validate({**(top or {}), "cases": []})
    except ValidationError as e:
        field_name, msg = first_error(e, "(corpus)")
        raise InputError(f"{top_label}: {field_name}: {msg}") from None
    corpus.cases = cases
    # One file: the hash of its bytes, as before; several: of every file's name and bytes in order.
    sha = digest.hexdigest() if len(files) > 1 else hashlib.sha256(raws[0]).hexdigest()
    return LoadedCorpus(corpus=corpus, path=paths[0], sha256=sha, paths=paths, origin=origin)
