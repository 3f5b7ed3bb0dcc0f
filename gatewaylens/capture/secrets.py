"""Capture's side of redaction: everything capture stores or prints goes through the one redactor.

Two layers, both built on :mod:`gatewaylens.redaction`:

* **Structural**: the client request (URL, headers, JSON body), the gateway's answer (headers,
  JSON body or raw text, every SSE frame) and every upstream record read from the mock are
  redacted field by field, by key name and value shape, keeping length + fingerprint so a
  forwarded key can still be told from a replaced one.
* **Exact values** (:class:`~gatewaylens.capture.rundir.Scrubber`): every secret capture knows
  about — in the corpus (case headers, client bodies, scripts), in gateway profiles (client
  headers, URLs) and in the configs and environments of the gateways it launches — is registered,
  and a last pass over every line written or printed replaces those exact values wherever they
  appear, whatever their shape (a gateway echoing its upstream key inside an error message).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from gatewaylens.capture.models import Case, ClientFrame, GatewayProfile
from gatewaylens.capture.rundir import Scrubber
from gatewaylens.mock.models import MockAnswer, RecordedExchange, SSEFrame
from gatewaylens.redaction import (
    CREDENTIAL_HEADERS,
    is_secret_name,
    redact_headers,
    redact_json,
    redact_json_text,
    redact_path,
    redact_query,
    redact_raw_text,
    redact_value,
    replace_secrets,
)


def looks_secret(value: str) -> bool:
    """A value under a secret-sounding name that is worth scrubbing everywhere.

    Names like ``x-portkey-provider`` sound secret to the redaction rules ("key") while their
    values are ordinary words (``openai``); scrubbing those from every stored body would corrupt
    the data.  Real credentials are long, have no spaces, and carry digits.
    """
    v = value.strip()
    return len(v) >= 8 and not any(c.isspace() for c in v) and "://" not in v and any(c.isdigit() for c in v)


def _is_reference(value: str) -> bool:
    """A config value that names where a key comes from rather than being one (``${VAR}``,
    ``os.environ/VAR``, ``env.VAR``): nothing to scrub."""
    v = value.strip()
    return (v.startswith("${") and v.endswith("}")) or v.startswith(("os.environ/", "env."))


def register_found(scrub: Scrubber, found: Iterable[str]) -> None:
    for s in found:
        if not _is_reference(s):
            scrub.add_credential(s)


def json_secrets(value: Any) -> set[str]:
    """Every credential the structural redactor finds in a JSON-like value (a config, a body)."""
    found: set[str] = set()
    redact_json(value, found=found)
    return {s for s in found if not _is_reference(s)}


def env_secrets(env: dict[str, str]) -> set[str]:
    """Environment values under credential names (``*_KEY``, ``*_TOKEN``, ``*_SECRET``...) and
    key-shaped values under any name."""
    out: set[str] = set()
    for k, v in env.items():
        if _is_reference(v):
            continue
        if is_secret_name(k.replace("_", "-")) and looks_secret(v):
            out.add(v)
        else:
            redact_value(v, out)
    return out


def register_json(scrub: Scrubber, value: Any) -> None:
    """Register every credential the structural redactor finds in a JSON-like value."""
    register_found(scrub, json_secrets(value))


def collect_secrets(scrub: Scrubber, profiles: Sequence[GatewayProfile], cases: Sequence[Case], mock_url: str) -> None:
    """Register every credential capture will send, so none can reach disk or the terminal.

    Sources: URLs (userinfo, query), headers of profiles, routes and cases (credential names,
    key shapes, and keys inside JSON-valued headers), and the cases' client bodies and scripts
    (JSON keys such as ``api_key``/``password``/``aws_*``, JWTs and provider key shapes at any depth).
    """

    def url_secrets(url: str) -> None:
        parts = urlsplit(url)
        if parts.username or parts.password:
            scrub.add(parts.netloc.rsplit("@", 1)[0])
            for x in (parts.username, parts.password):
                if x:
                    scrub.add(x)
        for k, v in parse_qsl(parts.query, keep_blank_values=True):
            if redact_value(v) != v or (is_secret_name(k, query=True) and looks_secret(v)):
                scrub.add_credential(v)
        found: set[str] = set()
        redact_path(parts.path, found)
        register_found(scrub, found)

    def header_secrets(headers: dict[str, str]) -> None:
        for k, v in headers.items():
            if k.lower() in CREDENTIAL_HEADERS or redact_value(v) != v or (is_secret_name(k) and looks_secret(v)):
                scrub.add_credential(v)
        found: set[str] = set()
        redact_headers(headers, found)
        register_found(scrub, found)

    url_secrets(mock_url)
    for p in profiles:
        url_secrets(p.base_url)
        header_secrets(p.client_headers)
        for r in p.routes:
            header_secrets(r.headers)
            url_secrets(r.path)
    for c in cases:
        header_secrets(c.headers)
        register_json(scrub, c.body)
        if c.script:
            register_json(scrub, [s.model_dump(mode="json", exclude_defaults=True) for s in c.script])


# --------------------------------------------------------------------------------------------
# Structural redaction of what capture stores
# --------------------------------------------------------------------------------------------


def redact_frame_data(data: str) -> tuple[str, Any | None]:
    """One SSE frame's data, redacted, and its parsed JSON (None when it is not JSON)."""
    text, parsed, is_json, _ = redact_json_text(data)
    return text, parsed if is_json else None


def client_frame(event: str | None, data: str, offset_ms: float) -> ClientFrame:
    text, parsed = redact_frame_data(data)
    return ClientFrame(event=event, data=text, offset_ms=offset_ms, json_data=parsed)


def _redact_frames(frames: list[SSEFrame] | None) -> bool:
    changed = False
    for f in frames or []:
        text, _, _, found = redact_json_text(f.data)
        if found:
            f.data, changed = text, True
    return changed


def redact_record(rec: RecordedExchange) -> RecordedExchange:
    """Redact a record read from a mock (in place; returns it).

    Records of the gatewaylens mock are redacted already; this pass makes capture's output safe
    whatever mock it reads (another build, a mock of the user's), and is cheap when nothing is
    left to find.
    """
    found: set[str] = set()
    rec.headers = redact_headers(rec.headers.items(), found)
    rec.query = redact_query(rec.query, found)
    rec.path = redact_path(rec.path, found)
    rec.raw_path = redact_path(rec.raw_path, found)
    body_found: set[str] = set()
    if rec.body_json is not None:
        rec.body_json = redact_json(rec.body_json, found=body_found)
    elif rec.body_text:
        red = redact_raw_text(rec.body_text, body_found)
        if body_found:
            rec.body_text = red
    if body_found:
        if rec.body_text:
            rec.body_text = replace_secrets(rec.body_text, body_found)
        if rec.body_b64:
            rec.body_b64 = None
            rec.notes.append("body_b64 dropped: it held a credential the mock had not redacted")
        if "body" not in rec.redacted:
            rec.redacted.append("body")
    if found and "headers" not in rec.redacted:
        rec.redacted.append("headers")
    _redact_answer(rec.response)
    return rec


def _redact_answer(ans: MockAnswer) -> None:
    ans.headers = redact_headers(ans.headers.items())
    if ans.body is not None:
        ans.body = redact_json(ans.body)
    _redact_frames(ans.frames)
