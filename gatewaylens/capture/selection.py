"""Which gateways a capture runs against: built-in names, ``--gateway NAME=URL`` and ``--gateways-file``.

A user's own gateway given as ``--gateway NAME=URL`` is assumed to accept the three client dialects
at the standard paths and to take model names exactly as the corpus writes them.  Which *upstream
kind* it calls is decided by the user's gateway configuration, not by capture, so capture cannot
choose it per case: the user states it with ``--upstream openai|anthropic`` (default ``openai``) or
per gateway as ``NAME:anthropic=URL`` (:attr:`GatewayProfile.upstream_only`).  The case runs meant
for the other kind are not run, and said once for the gateway (``GatewayInfo.not_run``), rather
than sent and mislabelled or listed as one "unsupported" exchange each.  A gateways file
(:class:`GatewaysFile`) gives full control: custom paths, headers, model names, dialects and
routes for both upstream kinds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from gatewaylens.capture.corpus import read_json_file, validate_items
from gatewaylens.capture.models import GatewayProfile, GatewaysFile, Route
from gatewaylens.dialects import DIALECT_PATHS, DIALECTS, UPSTREAMS, UpstreamKind, redact_url
from gatewaylens.errors import InputError, first_error, one_line

#: Gateway names become mock channel names (``/ch/<name>``): keep them to the mock's channel alphabet.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class Selection:
    profiles: list[GatewayProfile] = field(default_factory=list)
    #: names of profiles that are user-defined (``--gateway`` / ``--gateways-file``), never launched.
    custom: set[str] = field(default_factory=set)


def builtin_profiles() -> dict[str, GatewayProfile]:
    from gatewaylens.capture import gateways

    return dict(gateways.PROFILES)


def check_url(url: str, what: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError as e:
        raise InputError(f"{what}: URL {redact_url(url)!r} is not usable: {one_line(str(e), 80)}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{what}: URL must look like http://HOST:PORT, got {redact_url(url)!r}")
    if port == 0:
        raise InputError(f"{what}: URL {redact_url(url)!r}: port 0 is not a port one can connect to")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise InputError(f"{what}: URL {redact_url(url)!r} holds spaces or control characters")
    return url


def custom_profile(name: str, url: str, upstream: UpstreamKind) -> GatewayProfile:
    """Profile of a user's gateway at the standard dialect paths, models as the case writes them."""
    return GatewayProfile(
        name=name,
        title=f"{name} (user gateway)",
        base_url=url,
        routes=[Route(dialect=d, upstream=upstream, path=DIALECT_PATHS[d]) for d in DIALECTS],
        upstream_only=upstream,
        notes=f"user gateway from --gateway; configured by the user for an {upstream} upstream",
    )


def parse_gateway_option(value: str, default_upstream: UpstreamKind) -> GatewayProfile:
    """``NAME=URL`` or ``NAME:UPSTREAM=URL``."""
    what = f"--gateway {value.split('=', 1)[0]}"
    if "=" not in value:
        raise InputError(f"--gateway: expected NAME=URL (or NAME:openai=URL / NAME:anthropic=URL), got {redact_url(value)!r}")
    spec, url = value.split("=", 1)
    name, _, kind = spec.strip().partition(":")
    upstream: str = kind.strip().lower() or default_upstream
    if not NAME_RE.match(name):
        raise InputError(f"{what}: NAME must match [A-Za-z0-9][A-Za-z0-9._-]* (it becomes the mock channel)")
    if upstream not in UPSTREAMS:
        raise InputError(f"{what}: upstream kind must be one of {', '.join(UPSTREAMS)}, got {upstream!r}")
    check_url(url.strip(), what)
    return custom_profile(name, url.strip(), upstream)


def load_gateways_file(path: Path) -> list[GatewayProfile]:
    label = str(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        data = _read_yaml(path, label)
    else:
        data, _ = read_json_file(path, label)
    if isinstance(data, list):
        data = {"gateways": data}
    if not isinstance(data, dict):
        raise InputError(f"{label}: expected an object with a 'gateways' list, got {type(data).__name__}")
    extra = sorted(set(data) - {"gateways"})
    if extra:
        raise InputError(f"{label}: {extra[0]}: unknown field (expected only 'gateways')")
    items = data.get("gateways")
    if not isinstance(items, list):
        raise InputError(f"{label}: gateways: expected a list, got {type(items).__name__ if items is not None else 'nothing'}")
    if not items:
        raise InputError(f"{label}: gateways: the file defines no gateways")
    profiles = validate_items(items, GatewayProfile, label, "gateway", "name")
    for i, p in enumerate(profiles):
        where = f"{label}: gateway '{p.name}'" if NAME_RE.match(p.name) else f"{label}: gateway #{i}"
        if not NAME_RE.match(p.name):
            raise InputError(f"{where}: name: must match [A-Za-z0-9][A-Za-z0-9._-]* (it becomes the mock channel)")
        check_url(p.base_url, f"{where}: base_url")
        if not p.routes:
            raise InputError(f"{where}: routes: a gateway needs at least one route")
        for j, r in enumerate(p.routes):
            if not r.path.startswith("/"):
                raise InputError(f"{where}: routes[{j}].path: must start with '/'")
        seen: set[tuple[str, str, str]] = set()
        for j, r in enumerate(p.routes):
            key = (r.dialect, r.upstream, r.variant)
            if key in seen:
                raise InputError(f"{where}: routes[{j}].variant: two routes for {r.dialect}->{r.upstream} need distinct variants")
            seen.add(key)
    # Round-trip through the file model so its own rules apply too.
    try:
        GatewaysFile(gateways=profiles)
    except ValidationError as e:  # pragma: no cover - validated item by item above
        fld, msg = first_error(e, "gateways")
        raise InputError(f"{label}: {fld}: {msg}") from None
    return profiles


def _read_yaml(path: Path, label: str) -> Any:
    import yaml

    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{label}: cannot read: {one_line(e.strerror or str(e))}") from None
    try:
        return yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputError(f"{label}: not valid UTF-8 (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise InputError(f"{label}: invalid YAML: {one_line(str(e))}") from None


def select(names: str | None, custom: Sequence[str], files: Sequence[Path],
           default_upstream: UpstreamKind = "openai") -> Selection:
    """Build the selection; every problem is one :class:`InputError` line (exit 2)."""
    builtins = builtin_profiles()
    known = ", ".join(sorted(builtins)) or "(none installed in this build)"
    sel = Selection()
    if names is not None:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        if not wanted:
            raise InputError(f"--gateways: empty selection; known gateways: {known}")
        if wanted == ["all"]:
            wanted = sorted(builtins)
        unknown = [n for n in wanted if n not in builtins]
        if unknown:
            raise InputError(f"--gateways: unknown gateway {', '.join(repr(u) for u in unknown)}; known gateways: {known}")
        for n in dict.fromkeys(wanted):
            sel.profiles.append(builtins[n])
    for value in custom:
        prof = parse_gateway_option(value, default_upstream)
        sel.profiles.append(prof)
        sel.custom.add(prof.name)
    for f in files:
        for prof in load_gateways_file(f):
            sel.profiles.append(prof)
            sel.custom.add(prof.name)
    if not sel.profiles:
        raise InputError(f"no gateway selected: use --gateways NAMES, --gateway NAME=URL or --gateways-file FILE; "
                         f"known gateways: {known}")
    seen: set[str] = set()
    for p in sel.profiles:
        if p.name in seen:
            raise InputError(f"gateway {p.name!r} selected twice: each gateway needs its own name (and mock channel)")
        seen.add(p.name)
    return sel
