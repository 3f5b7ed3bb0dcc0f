"""One-line error messages, shared by every stage (bad input is always one line naming the field)."""

from __future__ import annotations

from pydantic import ValidationError

from gatewaylens.dialects import dotted


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so a message is always one line, and bound its length."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def first_error(err: ValidationError, default_field: str) -> tuple[str, str]:
    """``(field, message)`` of a pydantic error's first problem, ``field`` dotted like ``script[0].status``."""
    errors = err.errors(include_url=False, include_input=False)
    if not errors:
        return default_field, one_line(str(err))
    e = errors[0]
    loc = [p for p in e.get("loc", ()) if p != "__root__"]
    field = dotted(loc) if loc else default_field
    msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
    return field, one_line(msg)
