"""The error vocabulary shared by every stage (mock, capture, analyze, probe).

* :class:`GatewaylensError` — the base: ``str(err)`` is always one line, fit to print as it is.
* :class:`InputError` — bad input (a file, a field, an option); a CLI prints the line and exits
  with :data:`InputError.exit_code` (2), never a traceback.  ``capture.corpus.InputError`` and
  ``analyze.engine.BadInput`` are this same class under their older names.
* Stage errors that are not bad input (a gateway that will not start, say) subclass the base.

A pydantic :class:`~pydantic.ValidationError` becomes one line through :func:`first_error` (the
field and the message) and :func:`validation_line` (``field F: message``), nowhere else.
"""

from __future__ import annotations

from pydantic import ValidationError

from gatewaylens.dialects import dotted
from gatewaylens.formats import version_message


class GatewaylensError(Exception):
    """Base of every gatewaylens error; the message is one line."""

    exit_code: int = 1


class InputError(GatewaylensError):
    """A bad input file or option; ``str(err)`` is the single line to print (exit code 2)."""

    exit_code = 2


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so a message is always one line, and bound its length."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _first_problem(err: ValidationError) -> tuple[list[str | int], str, int] | None:
    """The first problem's location, its message (one line) and how many problems there are."""
    errors = err.errors(include_url=False, include_input=False)
    if not errors:
        return None
    e = errors[0]
    loc = [p for p in e.get("loc", ()) if p != "__root__"]
    msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
    return loc, one_line(msg), len(errors)


def first_error(err: ValidationError, default_field: str) -> tuple[str, str]:
    """``(field, message)`` of a pydantic error's first problem, ``field`` dotted like ``script[0].status``
    (how capture and the mock name a field of an input file)."""
    first = _first_problem(err)
    if first is None:
        return default_field, one_line(str(err))
    loc, msg, _count = first
    return (dotted(loc) if loc else default_field), msg


def validation_line(err: ValidationError, default_field: str = "(root)") -> str:
    """``field a.0.b: message``, ``(+N more)`` when there are others (how analyze names a field of a
    run file or fixture; the location keeps pydantic's dots, which tests and users grep for).
    A file of another format version is that line alone (:func:`gatewaylens.formats.version_message`):
    the version, not its fields, is the problem."""
    version = version_message(err)
    if version is not None:
        return version
    first = _first_problem(err)
    if first is None:
        return one_line(str(err).splitlines()[0] if str(err) else default_field)
    loc, msg, count = first
    where = ".".join(str(p) for p in loc) or default_field
    more = f" (+{count - 1} more)" if count > 1 else ""
    return f"field {where}: {msg}{more}"
