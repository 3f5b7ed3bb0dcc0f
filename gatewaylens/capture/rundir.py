"""The run directory, the one place that knows its layout: ``run.json``, ``exchanges.jsonl``
(appended, flushed per line) and ``<output>/latest``.

Capture writes it (:func:`new_run_dir`, :func:`write_run_info`, :class:`ExchangeWriter`) and reads it
back to resume (:func:`read_run_info`, :func:`load_done`); analyze reads it (:func:`resolve_run_dir`,
:func:`load_run`, :func:`iter_exchanges`, or :func:`iter_lines` + :func:`parse_line` when workers parse).

One tolerance rule for ``exchanges.jsonl`` serves both (:func:`parse_line`): blank lines are
skipped; an invalid *last* line is a write cut short by a crash and is dropped with a warning; an
invalid line anywhere else is bad input (:class:`BadLine`), so nothing captured is lost silently.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from gatewaylens.capture.models import Exchange, RunInfo
from gatewaylens.dialects import is_marker, redaction_marker
from gatewaylens.errors import InputError, validation_line
from gatewaylens.formats import version_message

RUN_FILE = "run.json"
EXCHANGES_FILE = "exchanges.jsonl"
#: ``<output>/latest``: a symlink to the newest run (or a file holding its path, where links fail)
LATEST = "latest"


def utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def new_run_dir(output_root: Path, now: datetime | None = None) -> Path:
    """``<root>/runs/<UTC timestamp>``, never an existing directory (``-2``, ``-3``... suffixes)."""
    runs = output_root / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    stamp = utc_stamp(now)
    for n in range(1, 10_000):
        cand = runs / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            cand.mkdir()  # atomic: two captures started in the same second get different dirs
            return cand
        except FileExistsError:
            continue
    raise InputError(f"{runs}: cannot find a free run directory name for {stamp}")


def point_latest(output_root: Path, run_dir: Path) -> None:
    """Make ``<root>/latest`` a relative symlink to ``run_dir``, replaced atomically."""
    link = output_root / LATEST
    target = os.path.relpath(run_dir, output_root)
    tmp = output_root / f".latest.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        tmp.symlink_to(target, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def holds_run(d: Path) -> bool:
    return (d / RUN_FILE).exists() or (d / EXCHANGES_FILE).exists()


def write_run_info(run_dir: Path, info: RunInfo, scrub: Scrubber | None = None) -> None:
    """Write ``run.json`` atomically (a reader never sees half a file)."""
    text = info.model_dump_json(indent=2)
    if scrub:
        text = scrub(text)
    tmp = run_dir / f".{RUN_FILE}.tmp"
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, run_dir / RUN_FILE)


def resolve_run_dir(arg: str | Path | None) -> Path:
    """``RUN_DIR`` or ``output/latest`` (a symlink, or a file holding the run's path)."""
    path = Path(arg) if arg else Path("output") / LATEST
    if path.is_file() and path.name == LATEST:
        target = Path(path.read_text(encoding="utf-8").strip())
        path = target if target.is_absolute() else path.parent / target
    if not path.is_dir():
        raise InputError(f"{path}: run directory not found")
    return path


def load_run(run_dir: Path) -> RunInfo:
    """``run.json``; a missing, unreadable or invalid file is one :class:`InputError` line."""
    path = run_dir / RUN_FILE
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        return RunInfo.model_validate_json(raw)
    except ValidationError as e:
        raise InputError(f"{path}: {validation_line(e)}") from None


def read_run_info(run_dir: Path) -> RunInfo | None:
    """``run.json`` when the directory has one (a run killed early may not), else ``None``."""
    return load_run(run_dir) if (run_dir / RUN_FILE).exists() else None


class BadLine(InputError):
    """A line of ``exchanges.jsonl`` that is not an exchange and is not the last line (or is of
    another format version, which is never forgiven)."""

    def __init__(self, path: Path, lineno: int, detail: str, version: bool = False) -> None:
        super().__init__(f"{path}:{lineno}: {detail}")
        #: ``version``: the line is of another format version (``detail`` is that one-line message)
        self.path, self.lineno, self.detail, self.version = path, lineno, detail, version

    def __reduce__(self) -> tuple[type[BadLine], tuple[Path, int, str, bool]]:
        # rebuilt from its fields, so it crosses from an analysis worker process intact
        return BadLine, (self.path, self.lineno, self.detail, self.version)


def iter_lines(path: Path, warnings: list[str]) -> Iterator[tuple[int, str, bool]]:
    """The non-blank lines of a JSONL file as ``(line number, text, is_last)``, streamed (memory
    does not grow with the number of exchanges).  Bytes that are not UTF-8 survive as surrogates."""
    if not path.exists():
        warnings.append(f"{path}: missing, no exchanges analyzed")
        return
    with path.open("r", encoding="utf-8", errors="surrogateescape") as fh:
        lineno = 0
        pending: tuple[int, str] | None = None
        for raw in fh:
            lineno += 1
            if not raw.strip():
                continue
            if pending is not None:
                yield pending[0], pending[1], False
            pending = (lineno, raw)
        if pending is not None:
            yield pending[0], pending[1], True


def parse_line(path: Path, lineno: int, raw: str, *, last: bool, warnings: list[str]) -> Exchange | None:
    """The tolerance rule: an invalid last line is skipped with a warning (``None``); an invalid
    line elsewhere raises :class:`BadLine`.  A line of another format version is never forgiven
    as a truncated write, last or not (:mod:`gatewaylens.formats`)."""
    try:
        return Exchange.model_validate_json(raw)
    except ValidationError as e:
        version = version_message(e) is not None
        if last and not version:
            warnings.append(f"{path}:{lineno}: invalid last line skipped (truncated write?): {validation_line(e)}")
            return None
        raise BadLine(path, lineno, validation_line(e), version) from None


def iter_exchanges(run_dir: Path, warnings: list[str]) -> Iterator[Exchange]:
    """Exchanges of ``exchanges.jsonl`` one at a time, under the tolerance rule."""
    path = run_dir / EXCHANGES_FILE
    for lineno, raw, last in iter_lines(path, warnings):
        ex = parse_line(path, lineno, raw, last=last, warnings=warnings)
        if ex is not None:
            yield ex


def load_done(run_dir: Path) -> list[Exchange]:
    """Exchanges already in ``exchanges.jsonl``, for ``--resume``, under the same tolerance rule.

    What the rule drops (a truncated last line, blank lines) is removed from the file, which is
    rewritten valid so the resumed run appends after a whole line; a bad line anywhere else is
    refused: nothing already captured is ever discarded silently.
    """
    p = run_dir / EXCHANGES_FILE
    if not p.exists():
        return []
    done: list[Exchange] = []
    kept: list[str] = []
    try:
        for lineno, raw, last in iter_lines(p, []):
            ex = parse_line(p, lineno, raw, last=last, warnings=[])
            if ex is not None:
                done.append(ex)
                kept.append(raw if raw.endswith("\n") else raw + "\n")
    except BadLine as e:
        if e.version:  # another format version: resuming would mix two formats in one file
            raise InputError(f"{p}: line {e.lineno}: {e.detail}; refusing to resume") from None
        raise InputError(f"{p}: line {e.lineno}: not a valid exchange ({e.detail}); refusing to resume") from None
    body = "".join(kept).encode("utf-8", "surrogateescape")
    if body != p.read_bytes():
        tmp = p.with_name(f".{EXCHANGES_FILE}.tmp")
        tmp.write_bytes(body)
        os.replace(tmp, p)
    return done


def drop_interrupted(run_dir: Path, done: list[Exchange]) -> tuple[list[Exchange], int]:
    """For ``--resume``: exchanges that were in flight when an earlier run was stopped (error kind
    ``interrupted``) are taken out of ``exchanges.jsonl`` so they are captured again; the others stay
    byte for byte.  Returns the kept exchanges and how many were dropped."""
    redo = {e.id for e in done if e.error is not None and e.error.kind == "interrupted"}
    if not redo:
        return done, 0
    p = run_dir / EXCHANGES_FILE
    kept_lines = []
    for line in p.read_bytes().splitlines(keepends=True):
        try:
            ident = json.loads(line).get("id")
        except ValueError:
            ident = None
        if ident in redo:
            continue
        kept_lines.append(line)
    tmp = p.with_name(f".{EXCHANGES_FILE}.tmp")
    tmp.write_bytes(b"".join(kept_lines))
    os.replace(tmp, p)
    return [e for e in done if e.id not in redo], len(redo)


class Scrubber:
    """Replace every known secret value with its redaction marker.

    The client headers are redacted field by field, but a gateway may echo a key back in a body
    or an error message; this last pass over each serialised line guarantees that no secret the
    client sent (or that a gateway profile uses) reaches disk or the terminal.
    """

    MIN_LEN = 8  # shorter "secrets" would mangle ordinary text

    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}
        self._order: list[str] | None = None

    def __len__(self) -> int:
        return len(self._secrets)

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and value.strip() in self._secrets

    def add(self, value: str) -> None:
        value = value.strip()
        if len(value) < self.MIN_LEN or value in self._secrets or is_marker(value):
            return
        marker = redaction_marker(value)
        self._secrets[value] = marker
        # The same secret as it appears inside a JSON string (escaped, and ASCII-escaped).
        for ascii_only in (False, True):
            escaped = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
            if escaped != value:
                self._secrets.setdefault(escaped, marker)
        self._order = None

    def add_credential(self, value: str) -> None:
        """A credential header/query value: the whole value and the token after an auth scheme."""
        self.add(value)
        parts = value.split(None, 1)
        if len(parts) == 2 and parts[0].lower() in ("bearer", "basic", "token"):
            self.add(parts[1])
        if "=" in value:  # cookies: each value of "a=b; c=d"
            for pair in value.split(";"):
                self.add(pair.partition("=")[2])

    def __call__(self, text: str) -> str:
        if self._order is None:
            # Longest first so a secret containing another is replaced whole.
            self._order = sorted(self._secrets, key=len, reverse=True)
        for secret in self._order:
            if secret in text:
                text = text.replace(secret, self._secrets[secret])
        return text


class ExchangeWriter:
    """Appends one exchange per line; each line is written in one call and flushed at once."""

    def __init__(self, run_dir: Path, scrub: Scrubber) -> None:
        self.path = run_dir / EXCHANGES_FILE
        self.scrub = scrub
        self._fh: IO[str] | None = self.path.open("a", encoding="utf-8")

    def write(self, ex: Exchange) -> None:
        if self._fh is None:
            raise RuntimeError("exchange writer is closed")
        line = self.scrub(ex.model_dump_json())
        self._fh.write(line + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
