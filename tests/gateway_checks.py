"""Small helpers shared by the LiteLLM, Portkey and claude-code-router gateway tests."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from gatewaylens.capture.models import Route


def resolve_route(route: Route, channel_url: str, mock_url: str) -> Route:
    """The route with ``{channel_url}`` / ``{mock_url}`` filled in its headers (as capture does)."""
    headers = {k: v.replace("{channel_url}", channel_url).replace("{mock_url}", mock_url)
               for k, v in route.headers.items()}
    return route.model_copy(update={"headers": headers})


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket in LISTEN state on ``port`` (from /proc/net/tcp{,6})."""
    found: set[str] = set()
    for name, width in (("tcp", 8), ("tcp6", 32)):
        table = Path("/proc/net") / name
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port or len(addr_hex) != width:
                continue
            raw = bytes.fromhex(addr_hex)
            # /proc prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(str(ipaddress.ip_address(words)))
    return found


def skip_unless_launchable(name: str) -> None:
    """Skip the calling test, with the launcher's one-line reason, when gateway ``name`` cannot run here."""
    import pytest

    from gatewaylens.capture import gateways

    prof = gateways.PROFILES.get(name)
    if prof is None or not prof.launcher or prof.launcher not in gateways.LAUNCHERS:
        pytest.skip(f"{name} profile/launcher not in this build")
    reason = gateways.LAUNCHERS[prof.launcher]().available()
    if reason:
        pytest.skip(f"{name} not installed: {reason}")
