"""The run directory: ``run.json``, ``exchanges.jsonl`` (appended, flushed per line) and ``output/latest``."""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from gatewaylens.capture.corpus import InputError
from gatewaylens.capture.models import Exchange, RunInfo
from gatewaylens.dialects import is_marker, redaction_marker
from gatewaylens.errors import one_line
from gatewaylens.formats import version_message

RUN_FILE = "run.json"
EXCHANGES_FILE = "exchanges.jsonl"


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
    link = output_root / "latest"
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


def read_run_info(run_dir: Path) -> RunInfo | None:
    p = run_dir / RUN_FILE
    if not p.exists():
        return None
    try:
        return RunInfo.model_validate_json(p.read_bytes())
    except ValidationError as e:
        version = version_message(e)
        if version is not None:
            raise InputError(f"{p}: {version}") from None
        raise InputError(f"{p}: not a valid run.json: {one_line(str(e.errors()[0].get('msg', 'invalid')))}") from None


def load_done(run_dir: Path) -> list[Exchange]:
    """Exchanges already in ``exchanges.jsonl``, for ``--resume``.

    A truncated last line (a run killed while writing) is dropped and the file rewritten valid;
    a bad line anywhere else is refused: nothing already captured is ever discarded silently.
    """
    p = run_dir / EXCHANGES_FILE
    if not p.exists():
        return []
    raw = p.read_bytes()
    lines = raw.split(b"\n")
    ends_clean = raw.endswith(b"\n") or not raw
    if ends_clean:
        lines = lines[:-1]
    done: list[Exchange] = []
    keep = 0
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        try:
            if not line.strip():
                raise ValueError("empty line")
            done.append(Exchange.model_validate_json(line))
            keep += 1
        except ValueError as e:  # ValidationError is a ValueError
            version = version_message(e) if isinstance(e, ValidationError) else None
            if version is not None:
                raise InputError(f"{p}: line {i + 1}: {version}; refusing to resume") from None
            if last:
                break
            msg = e.errors()[0].get("msg", "invalid") if isinstance(e, ValidationError) else str(e)
            raise InputError(f"{p}: line {i + 1}: not a valid exchange ({one_line(str(msg))}); refusing to resume") from None
    if keep != len(lines) or not ends_clean:
        body = b"".join(line + b"\n" for line in lines[:keep])
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
