"""Format versions of the files gatewaylens writes, checked on read.

Each versioned model declares its version field with :func:`version_field` and checks it with
:func:`check_version` (a ``mode="before"`` validator).  A file of another version fails validation
with an error of type ``format_version`` whose message is the whole one-line explanation::

    output/runs/x/run.json: format_version 3; this gatewaylens reads run.json format_version 1 (…)

Readers pass that message on verbatim (:func:`version_message`) and never skip such a line — the
last line of ``exchanges.jsonl`` is otherwise forgiven as a truncated write.

A file written before its format carried a version (``run.json`` and exchange records of
gatewaylens 0.1 before this field) is version 1: that is exactly the format version 1 describes.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError
from pydantic_core import PydanticCustomError

#: ``run.json`` (:class:`gatewaylens.capture.models.RunInfo`)
RUN_FORMAT_VERSION = 1
#: one line of ``exchanges.jsonl`` (:class:`gatewaylens.capture.models.Exchange`)
EXCHANGE_FORMAT_VERSION = 1
#: a corpus file's ``version`` (:class:`gatewaylens.capture.models.Corpus`)
CORPUS_FORMAT_VERSION = 1
#: an AI reviewer's verdict file (:class:`gatewaylens.analyze.models.Verdict`)
VERDICT_FORMAT_VERSION = 1

ERROR_TYPE = "format_version"


def version_field(version: int, what: str) -> Any:
    """A ``format_version`` field defaulting to ``version`` (documented in the JSON Schema)."""
    return Field(version, description=f"format version of {what}; this gatewaylens reads {version}")


def version_problem(value: Any, supported: int, what: str, field: str = "format_version",
                    missing_ok: bool = True) -> str | None:
    """None when ``value`` is the supported version (or missing, when that means version 1);
    else the one-line explanation naming the version found and the supported one."""
    if value is None and missing_ok:
        return None
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if is_int and value == supported:
        return None
    found = f"no {field} (not a gatewaylens {what})" if value is None else f"{field} {value!r}"
    hint = " (written by a newer gatewaylens: upgrade to read it)" if is_int and value > supported else ""
    return f"{found}; this gatewaylens reads {what} {field} {supported}{hint}"


def check_version(value: Any, supported: int, what: str, field: str = "format_version",
                  missing_ok: bool = True) -> int:
    """``value`` when it is ``supported`` (a pydantic ``before`` validator); else a
    ``format_version`` error carrying :func:`version_problem`'s line."""
    problem = version_problem(value, supported, what, field, missing_ok)
    if problem is not None:
        raise PydanticCustomError(ERROR_TYPE, "{problem}", {"problem": problem})
    return supported


def version_message(err: ValidationError) -> str | None:
    """The one-line message of a ``format_version`` error in ``err``, else None."""
    for e in err.errors(include_url=False):
        if e.get("type") == ERROR_TYPE:
            return str(e.get("msg"))
    return None
