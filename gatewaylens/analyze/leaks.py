"""Gateway internals that reached the client (kind ``leaked``, direction ``call``).

A client should get an error it can act on, not the gateway's insides: a stack trace (Node.js
``at fn (/srv/app/dist/cli.js:12:34)``, a Python traceback, a Go panic) or the server's file paths.
claude-code-router 2.0.0 puts ``err.stack`` into the error text it answers with (dist/cli.js of
@musistudio/claude-code-router 2.0.0), which tells an attacker its install path and versions.

Text the mock itself answered is never counted: what the upstream said, the gateway may relay.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from gatewaylens.analyze.translate import Entry
from gatewaylens.analyze.values import excerpt
from gatewaylens.capture.models import ClientResponse, Exchange

#: (what it is, pattern).  Paths need a source-file suffix so a URL path in a reply is not one.
_SIGNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a Node.js stack trace", re.compile(r"\bat [\w.$<>\[\] ]*\(?(?:file://|node:)?/?[\w./@-]+\.[cm]?[jt]s:\d+:\d+\)?")),
    ("a Python traceback", re.compile(r"Traceback \(most recent call last\)|File \"/[^\"]+\.py\", line \d+")),
    ("a Go panic", re.compile(r"goroutine \d+ \[running\]|panic: .*\n\s*goroutine")),
    ("a server file path", re.compile(r"(?<![\w/.:])/(?:home|root|usr|opt|var|srv|app|work|tmp|Users)/[\w.@/-]+"
                                      r"\.(?:[cm]?js|ts|py|go|rs|java|rb)\b")),
)


def _texts(cr: ClientResponse) -> Iterator[str]:
    if cr.text:
        yield cr.text
    if cr.body is not None:
        yield json.dumps(cr.body, ensure_ascii=False)
    for f in cr.frames or ():
        yield f.data


def leak_entries(ex: Exchange) -> list[Entry]:
    cr = ex.client_response
    if cr is None:
        return []
    upstream = "\n".join(
        json.dumps(r.response.body, ensure_ascii=False) + "".join(f.data for f in r.response.frames or ())
        for r in ex.upstream_requests)
    found: dict[str, str] = {}
    for text in _texts(cr):
        # JSON-escaped text (a stack inside an error string) reads as it would be shown.
        plain = text.replace("\\n", "\n").replace("\\/", "/")
        for what, rx in _SIGNS:
            m = rx.search(plain)
            if m and what not in found and m.group(0) not in upstream:
                found[what] = m.group(0)
    if not found:
        return []
    what = " and ".join(found)
    sample = next(iter(found.values()))
    return [Entry("leaked", None, "", None, excerpt(sample, 160), "error",
                  f"the client received gateway internals: {what} ({excerpt(sample, 100)})")]
