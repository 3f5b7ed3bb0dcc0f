"""Call-level behaviours of one exchange (direction ``call``): how many times the gateway called
the upstream for one client request, and whether the client got an answer with no upstream call.

* a call after a failed one (429 or 5xx) is ``retried`` (``info``: the expected recovery; ``warn``
  after another failure status, which a retry rarely fixes);
* a call after a successful one (status < 400) is ``duplicated_call`` at ``error``: the upstream
  did (and billed) the work twice;
* a 2xx/3xx answer to the client with no upstream call is ``answered_without_upstream`` (``warn``).
"""

from __future__ import annotations

from gatewaylens.analyze.models import Severity
from gatewaylens.analyze.translate import Entry
from gatewaylens.capture.models import Exchange

#: Upstream statuses after which a retry is the expected behaviour.
RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def call_entries(ex: Exchange) -> list[Entry]:
    out: list[Entry] = []
    calls = ex.upstream_requests
    if not calls:
        cr = ex.client_response
        if cr is not None and cr.status < 400:
            out.append(Entry("answered_without_upstream", None, "(call)", None, cr.status, "warn",
                             f"the client got HTTP {cr.status} although the upstream was never called"))
        return out
    for i in range(1, len(calls)):
        prev = calls[i - 1].response.status
        where = f"(call)[{i}]"
        if prev < 400:
            out.append(Entry("duplicated_call", None, where, prev, calls[i].response.status, "error",
                             f"upstream call {i + 1} of {len(calls)} came after call {i} had succeeded (HTTP {prev})"))
        else:
            sev: Severity = "info" if prev in RETRYABLE else "warn"
            out.append(Entry("retried", None, where, prev, calls[i].response.status, sev,
                             f"upstream call {i + 1} of {len(calls)} retried after HTTP {prev}"))
    return out
