"""``model_substituted``: the model the upstream received versus the one the route asked for, and
the model the client is told versus the one the upstream answered with.

* **On the way up** (path ``(call).model``): the upstream must receive the model the gateway is
  configured to send for the client's model — ``Exchange.expected_model``, from the profile's
  ``model_aliases`` (LiteLLM's ``model_list``, claude-code-router's ``provider,model``) — or,
  without an alias, the client's own model (a routing prefix ``provider/`` or ``provider,`` taken
  off).  Anything else is a silent substitution: ``warn`` without a declared alias (the gateway may
  have an alias the profile does not know), ``error`` against a declared one.
* **On the way back** (path ``(response).model``): the client must be told the model the
  upstream answered with, or the name it asked for (an alias restored); an unrelated name
  (``"unknown"``, a hard-coded placeholder) is a ``warn``.  A dated snapshot of the same model
  (``gpt-4.1-mini`` vs ``gpt-4.1-mini-2025-04-14``) is the same model.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from gatewaylens.analyze.translate import Entry
from gatewaylens.capture.models import Exchange, GatewayProfile, HeaderRule
from gatewaylens.mock.models import RecordedExchange

_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


@lru_cache(maxsize=1)
def _builtin() -> dict[str, GatewayProfile]:
    from gatewaylens.capture.selection import builtin_profiles

    return builtin_profiles()


def header_policy(ex: Exchange) -> list[HeaderRule]:
    """The exchange's header rules; runs recorded before exchanges carried them fall back to the
    built-in profile of that name."""
    if ex.header_policy:
        return ex.header_policy
    prof = _builtin().get(ex.gateway)
    return list(prof.header_policy) if prof is not None and ex.expected_model is None else []


def expected_model(ex: Exchange, client_model: str | None) -> tuple[str | None, bool]:
    """(the model the upstream must receive, whether a profile alias says so).  Runs recorded
    before exchanges carried ``expected_model`` fall back to the built-in profile of that name."""
    if ex.expected_model:
        return ex.expected_model, True
    if client_model is not None and ex.client_request is not None:
        prof = _builtin().get(ex.gateway)
        if prof is not None and client_model in prof.model_aliases:
            return prof.model_aliases[client_model], True
    return client_model, False


def bare(model: str) -> str:
    """``openai/gpt-4.1-mini`` / ``mock-openai,gpt-4.1-mini`` / ``gpt-4.1-mini-2025-04-14`` -> ``gpt-4.1-mini``."""
    m = model.rsplit(",", 1)[-1].rsplit("/", 1)[-1].strip().lower()
    return _SNAPSHOT.sub("", m)


def same_model(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    return a == b or bare(a) == bare(b)


def answered_model(rec: RecordedExchange) -> str | None:
    """The model the upstream's answer names (its body, or the first stream frame that says)."""
    ans = rec.response
    if isinstance(ans.body, dict):
        return _model_in(ans.body)
    for f in ans.frames or ():
        if f.data[:1] == "{" and '"model"' in f.data:
            try:
                m = _model_in(json.loads(f.data))
            except ValueError:
                continue
            if m:
                return m
    return None


def _model_in(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    for holder in (data, data.get("message"), data.get("response")):
        if isinstance(holder, dict) and isinstance(holder.get("model"), str):
            return str(holder["model"])
    return None


def told_model(ex: Exchange) -> str | None:
    """The model the client is told (its body, or the first client frame that names one)."""
    cr = ex.client_response
    if cr is None:
        return None
    if isinstance(cr.body, dict):
        return _model_in(cr.body)
    for f in cr.frames or ():
        m = _model_in(f.json_data)
        if m:
            return m
    return None


def model_entries(ex: Exchange, answer: int | None) -> list[Entry]:
    """``model_substituted`` entries of one exchange (``answer``: index of the upstream call the
    client's answer derives from)."""
    out: list[Entry] = []
    body = ex.client_request.body if ex.client_request else None
    client_model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
    if client_model is None:
        return out
    want, aliased = expected_model(ex, client_model)
    seen: set[str] = set()
    for i, rec in enumerate(ex.upstream_requests):
        sent = rec.body_json.get("model") if isinstance(rec.body_json, dict) else None
        if not isinstance(sent, str) or same_model(sent, want) or sent in seen:
            continue  # a retry repeating the same substitution is the same behaviour, said once
        if not aliased and client_model in sent:
            continue  # the client's model under the gateway's routing name (``mygw-gpt-4o-mini``): a mapping
        seen.add(sent)
        how = f"the profile maps {client_model!r} to {want!r}" if aliased else "no alias is configured for it"
        out.append(Entry("model_substituted", "(call).model", "(call).model" if i == 0 else f"(call)[{i}].model",
                         client_model, sent, "error" if aliased else "warn",
                         f"the client asked for {client_model!r}, the upstream received {sent!r} ({how})"))
    if answer is None or ex.client_response is None or ex.client_response.status >= 400:
        return out
    up_model = answered_model(ex.upstream_requests[answer])
    told = told_model(ex)
    if told is None or up_model is None:
        return out
    if same_model(told, up_model) or same_model(told, client_model) or (want and same_model(told, want)):
        return out
    out.append(Entry("model_substituted", "(response).model", "(response).model", up_model, told, "warn",
                     f"the upstream answered as {up_model!r} but the client is told {told!r} "
                     f"(it asked for {client_model!r})"))
    return out
