"""Redaction by structure: the one redactor every stage uses (re-exported by ``gatewaylens.dialects``).

A credential is recognised

* **by name**: header names (``authorization``, ``x-api-key``, ``cookie``, anything containing key,
  token, secret, auth, password, credential, cred, signature, session, or the word ``pat``; Portkey's
  ``x-portkey-*`` routing headers excepted), query parameter names (also ``key``, ``sig``, ``pwd``…)
  and JSON object keys (``*api_key*``, ``*secret*``, ``*password*``, ``pwd``, ``*_token``, ``token``,
  ``authorization``, ``cookie``, ``*credential*``, ``*private_key*``, ``*access_key*``, ``aws_*``,
  ``*_cred``, ``key``/``*_key`` when the value looks like a credential, ``pat``, ``jwt``; dashes count as
  underscores, so a header map in a body — ``{"x-upstream-cred": …}`` — is covered too);
* **by value**, anywhere (header values, query values, URL path segments, every string of a JSON
  body, free text): provider key shapes (``sk-…``, ``sk_live_…``, ``pk-…``, ``rk_…``, ``sk-ant-…``,
  ``AIza…``, ``xox?-…``, ``ghp_…``/``github_pat_…``, ``glpat-…``, ``hf_…``, ``gsk_…``, ``xai-…``),
  JWTs (``eyJ….….…``), AWS access key ids (``AKIA…``/``ASIA…``), and ``Bearer <token>``.

Every secret becomes ``[REDACTED len=N fp=XXXXXXXX]``: the length and a short non-reversible
fingerprint, so a reader can still tell a forwarded key (same fingerprint) from a replaced one.

JSON is redacted structurally (objects, lists, strings that are themselves JSON), and the raw text
of a JSON document is redacted by replacing the secrets found in it textually, so that a stored raw
text and its parsed form stay consistent (:func:`redact_json_text`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED_PREFIX = "[REDACTED"
_REDACTED_RE = re.compile(r"\[REDACTED len=\d+ fp=[0-9a-f]{8}\]")


def fingerprint(value: str) -> str:
    """A short, non-reversible fingerprint: equal secrets share it, nothing else can be learnt."""
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=4, person=b"gwlens-fp").hexdigest()


def redaction_marker(value: str) -> str:
    """Replacement for a secret: keeps its length and a fingerprint."""
    return f"[REDACTED len={len(value)} fp={fingerprint(value)}]"


def is_marker(value: str) -> bool:
    return bool(_REDACTED_RE.fullmatch(value))


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

#: Headers whose value is a credential whatever it looks like (the one list; capture scrubs their
#: values everywhere, every redactor masks them).
CREDENTIAL_HEADERS: frozenset[str] = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"})
_SECRET_NAME_PARTS = ("key", "token", "secret", "auth", "password", "passwd", "credential", "cred", "signature",
                      "cookie", "session")
_SECRET_NAME_WORDS = {"pat", "pwd", "jwt", "sig"}
_SECRET_QUERY_EXACT = {"key", "api_key", "apikey", "token", "sig", "signature", "code", "access_token", "auth",
                       "secret", "password", "pwd", "pass", "passwd", "pat", "jwt"}
#: Words that contain a secret-looking part but name no secret (Portkey's routing headers).
_NOT_SECRET_WORDS = ("portkey", "keep-alive", "keepalive", "monkey")


def is_secret_name(name: str, *, query: bool = False) -> bool:
    """A header (or, with ``query``, a query parameter) name whose value is a credential."""
    n = name.strip().lower()
    if n in CREDENTIAL_HEADERS or (query and n in _SECRET_QUERY_EXACT):
        return True
    for word in _NOT_SECRET_WORDS:
        n = n.replace(word, "")
    if any(part in n for part in _SECRET_NAME_PARTS):
        return True
    return bool(_SECRET_NAME_WORDS & set(re.split(r"[-_.\s]+", n)))


#: JSON keys whose string value is a credential whatever it looks like.
_STRONG_KEY_PARTS = ("apikey", "api_key", "secret", "password", "passwd", "authorization", "cookie", "credential",
                     "private_key", "privatekey", "access_key", "accesskey", "bearer")
_STRONG_KEY_EXACT = {"pwd", "jwt", "pat", "x_api_key", "proxy_authorization"}
#: JSON keys that name ordinary data although they end like a credential name.
_NOT_SECRET_KEYS = {"prompt_cache_key", "cache_key", "idempotency_key", "partition_key", "sort_key", "dedup_key",
                    "lookup_key", "primary_key", "foreign_key", "key_name", "key_id", "token_type", "tokenizer",
                    "signature", "gwl_session", "session_id", "cache_control", "keys"}

STRONG = 2
WEAK = 1


def credential_key(name: str) -> int:
    """How surely a JSON object key names a credential: 2 always redact, 1 redact when the value looks
    like one, 0 not a credential name."""
    n = name.strip().lower().replace("-", "_")
    if n in _NOT_SECRET_KEYS or n.endswith("tokens") or "token_count" in n:
        return 0
    if n in _STRONG_KEY_EXACT or any(p in n for p in _STRONG_KEY_PARTS):
        return STRONG
    if n.endswith("_token") or n.startswith("token_") or n.endswith("_pwd") or n.endswith("_pat") or n.endswith(
            ("_cred", "_creds")) or n in ("cred", "creds"):
        return STRONG
    # ``token`` alone is also a logprobs entry's text; ``auth`` alone may be a mode word.
    if n.startswith("aws_") or n in ("key", "token", "auth") or n.endswith("_key") or n.endswith("_auth"):
        return WEAK
    return 0


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------

#: Credential shapes recognised anywhere, even in free text.
_KEYLIKE_RE = re.compile(
    r"(?<![A-Za-z0-9_\-])("
    r"sk-[A-Za-z0-9_\-]{8,}|sk_[A-Za-z0-9_\-]{8,}|pk-[A-Za-z0-9_\-]{8,}|pk_(?:live|test)_[A-Za-z0-9]{8,}"
    r"|rk_(?:live|test)_[A-Za-z0-9]{8,}|xox[abprs]-[A-Za-z0-9\-]{6,}|AIza[0-9A-Za-z_\-]{10,}"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{4,}(?:\.[A-Za-z0-9_\-]*)?"
    r"|(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA)[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_\-]{16,}"
    r"|hf_[A-Za-z0-9]{20,}|gsk_[A-Za-z0-9]{20,}|xai-[A-Za-z0-9]{20,}"
    r")"
)
#: In a header value: an auth scheme and its token.
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic|token)\s+([A-Za-z0-9._~+/=\-:]{6,})")
#: In free text (JSON strings, bodies): only ``Bearer <token>`` with a digit in a long token.
_TEXT_BEARER_RE = re.compile(r"\b([Bb]earer)\s+((?=[A-Za-z._~+/=\-]*\d)[A-Za-z0-9._~+/=\-]{12,})")
_SCHEME_RE = re.compile(r"(?i)^(bearer|basic|token)\s+(.+)$")


def _entropy(value: str) -> float:
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_secret(value: str) -> bool:
    """A value worth treating as a credential: long, no spaces, not a URL, with a digit or high entropy.

    Names like ``x-portkey-provider`` sound secret while their values are ordinary words
    (``openai``); real credentials are long, have no spaces, and carry digits or look random.
    """
    v = value.strip()
    if len(v) < 8 or any(c.isspace() for c in v) or "://" in v or is_marker(v):
        return False
    return any(c.isdigit() for c in v) or (len(v) >= 16 and _entropy(v) >= 3.5)


def _mark(found: set[str] | None, secret: str) -> str:
    if found is not None:
        found.add(secret)
    return redaction_marker(secret)


def redact_value(value: str, found: set[str] | None = None) -> str:
    """Redact key-like substrings (and ``Bearer/Basic/Token <x>``) inside a header or query value."""
    if is_marker(value):
        return value
    out = _BEARER_RE.sub(lambda m: f"{m.group(1)} {m.group(2) if is_marker(m.group(2)) else _mark(found, m.group(2))}",
                         value)
    return _KEYLIKE_RE.sub(lambda m: _mark(found, m.group(0)), out)


#: In free text: ``?name=value`` / ``&name=value`` (a URL quoted in a message or an echoed request).
_TEXT_QUERY_RE = re.compile(r"(?<=[?&])([A-Za-z0-9_.\-]{1,64})=([^&\s\"'<>#\\]+)")
#: In free text: ``scheme://user:password@host``.
_TEXT_USERINFO_RE = re.compile(r"(?<=://)([^/\s:@\"'<>]{1,256}):([^/\s@\"'<>]{1,256})@")


def redact_text(text: str, found: set[str] | None = None) -> str:
    """Redact credential shapes in free text (conservative: ordinary prose is left alone): key
    shapes, ``Bearer <token>``, and in URLs quoted in the text, query values under credential
    names (``?pwd=…``, ``&api_key=…``) and ``user:password@`` userinfo."""
    if "[REDACTED" in text and is_marker(text):
        return text
    out = _KEYLIKE_RE.sub(lambda m: _mark(found, m.group(0)), text)
    out = _TEXT_BEARER_RE.sub(lambda m: f"{m.group(1)} {_mark(found, m.group(2))}", out)
    if "=" in out and ("?" in out or "&" in out):
        out = _TEXT_QUERY_RE.sub(lambda m: f"{m.group(1)}={_mark(found, m.group(2))}"
                                 if is_secret_name(m.group(1), query=True) and not m.group(2).startswith("[REDACTED")
                                 else m.group(0), out)
    if "://" in out and "@" in out:
        out = _TEXT_USERINFO_RE.sub(lambda m: f"{m.group(1)}:{_mark(found, m.group(2))}@"
                                    if not m.group(2).startswith("[REDACTED") else m.group(0), out)
    return out


def redact_secret(value: str, found: set[str] | None = None) -> str:
    """Redact a whole value that is known to be a credential, keeping an auth scheme word visible."""
    if is_marker(value) or value == "":
        return value
    m = _SCHEME_RE.match(value)
    if m:
        if is_marker(m.group(2)):
            return value
        return f"{m.group(1)} {_mark(found, m.group(2))}"
    return _mark(found, value)


# --------------------------------------------------------------------------------------------
# JSON, structurally
# --------------------------------------------------------------------------------------------

_MAX_INNER_JSON = 1 << 20


def _redact_string(s: str, level: int, found: set[str]) -> str:
    if not s or is_marker(s):
        return s
    if level == STRONG or (level == WEAK and looks_secret(s)):
        return redact_secret(s, found)
    if s[:1] in "{[" and len(s) <= _MAX_INNER_JSON:
        # A string that is itself JSON (tool arguments, a config passed as text): its secrets are
        # replaced textually, so its formatting is kept.
        try:
            inner = json.loads(s)
        except (ValueError, RecursionError):
            inner = None
        if isinstance(inner, (dict, list)):
            inner_found: set[str] = set()
            redact_json(inner, found=inner_found)
            if inner_found:
                found |= inner_found
                s = replace_secrets(s, inner_found)
    return redact_text(s, found)


def redact_json(value: Any, *, found: set[str] | None = None, level: int = 0) -> Any:
    """A redacted copy of a parsed JSON value (iterative: any depth).  Secrets found go to ``found``."""
    acc: set[str] = found if found is not None else set()
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(root, 0, value, level)]
    while stack:
        parent, slot, node, lvl = stack.pop()
        if isinstance(node, dict):
            new: dict[Any, Any] = {}
            parent[slot] = new
            for k, v in node.items():
                nk = redact_text(k, acc) if isinstance(k, str) else k
                new[nk] = None
                stack.append((new, nk, v, max(lvl, credential_key(k) if isinstance(k, str) else 0)))
        elif isinstance(node, list):
            lst: list[Any] = [None] * len(node)
            parent[slot] = lst
            for i, v in enumerate(node):
                stack.append((lst, i, v, lvl))
        elif isinstance(node, str):
            parent[slot] = _redact_string(node, lvl, acc)
        else:
            parent[slot] = node
    return root[0]


def replace_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret, raw and as it appears escaped inside a JSON string, by its marker."""
    forms: dict[str, str] = {}
    for s in secrets:
        if not s:
            continue
        marker = redaction_marker(s)
        forms[s] = marker
        for ascii_only in (False, True):
            try:
                esc = json.dumps(s, ensure_ascii=ascii_only)[1:-1]
            except (ValueError, UnicodeEncodeError):
                continue
            forms.setdefault(esc, marker)
    for form in sorted(forms, key=len, reverse=True):  # longest first: a secret containing another goes whole
        if form in text:
            text = text.replace(form, forms[form])
    return text


_NAMED_VALUE_RE = re.compile(r'"([A-Za-z0-9_\-]{1,64})"\s*:\s*"((?:[^"\\]|\\.){1,4096})"')


def redact_raw_text(text: str, found: set[str] | None = None) -> str:
    """Redact text that could not be parsed as JSON: credential shapes, and ``"name": "value"`` pairs
    under credential names (a body too deep to parse, a truncated one)."""
    acc: set[str] = found if found is not None else set()

    def pair(m: re.Match[str]) -> str:
        lvl = credential_key(m.group(1))
        val = m.group(2)
        if lvl == STRONG or (lvl == WEAK and looks_secret(val)):
            return f'"{m.group(1)}": "{_mark(acc, val)}"'
        return m.group(0)

    return redact_text(_NAMED_VALUE_RE.sub(pair, text), acc)


def redact_json_text(text: str) -> tuple[str, Any, bool, set[str]]:
    """``(text, parsed, is_json, secrets)`` with secrets redacted in both forms, kept consistent.

    The text keeps its formatting (secrets are replaced in place); when an in-place replacement
    cannot give a text whose parse equals the redacted structure (a secret written with unusual
    escapes), the text is re-serialised from the redacted structure instead.
    """
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        found: set[str] = set()
        return redact_raw_text(text, found), None, False, found
    found = set()
    red = redact_json(parsed, found=found)
    if not found:
        return text, parsed, True, found
    new_text = replace_secrets(text, found)
    try:
        again = json.loads(new_text)
    except (ValueError, RecursionError):
        again = None
    if again is not None:
        more: set[str] = set()
        red_again = redact_json(again, found=more)
        if not more and red_again == again:
            return new_text, again, True, found
    return json.dumps(red, ensure_ascii=False), red, True, found


# --------------------------------------------------------------------------------------------
# Headers, query, URL, path
# --------------------------------------------------------------------------------------------


def redact_header_value(name: str, value: str, found: set[str] | None = None) -> str:
    if is_secret_name(name):
        return redact_secret(value, found)
    stripped = value.lstrip()
    if stripped[:1] in "{[":
        # A JSON-valued header (x-portkey-config, x-portkey-custom-headers...): by structure.
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, (dict, list)):
            inner: set[str] = set()
            redact_json(parsed, found=inner)
            if inner:
                if found is not None:
                    found |= inner
                value = replace_secrets(value, inner)
    return redact_value(value, found)


def redact_headers(headers: Iterable[tuple[str, str]] | Mapping[str, str],
                   found: set[str] | None = None) -> dict[str, str]:
    """Lower-case header names; credential headers fully redacted, JSON values by structure, key-like
    values masked anywhere."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        red = redact_header_value(key, value, found)
        out[key] = f"{out[key]}, {red}" if key in out else red
    return out


def redact_query(pairs: Iterable[tuple[str, str]], found: set[str] | None = None) -> list[tuple[str, str]]:
    return [(k, redact_secret(v, found) if is_secret_name(k, query=True) else redact_value(v, found))
            for k, v in pairs]


def redact_path(path: str, found: set[str] | None = None) -> str:
    """Redact credential shapes in URL path segments (``/v1/chat/completions/sk-…``)."""
    return "/".join(redact_value(seg, found) for seg in path.split("/"))


def redact_url(url: str, found: set[str] | None = None) -> str:
    """Redact credentials in a URL's userinfo, path segments and query string."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{_mark(found, userinfo)}@{host}"
    query = urlencode(redact_query(parse_qsl(parts.query, keep_blank_values=True), found), safe="[]= ")
    return urlunsplit((parts.scheme, netloc, redact_path(parts.path, found), query, parts.fragment))


# --------------------------------------------------------------------------------------------
# Terminal
# --------------------------------------------------------------------------------------------

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Escape control characters (and bidi overrides) so a line printed to a terminal stays one line
    and cannot move the cursor or recolour the screen."""
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 0x100
                           else f"\\u{ord(m.group(0)):04x}", text)
