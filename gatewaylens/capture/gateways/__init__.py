"""Registry of built-in gateway profiles and their local launchers.

Each module in this package defines ``PROFILES: list[GatewayProfile]`` and
``LAUNCHERS: list[type[Launcher]]``; a profile's ``launcher`` names one of those launchers.
"""

from __future__ import annotations

import importlib

from gatewaylens.capture.launch import Launcher
from gatewaylens.capture.models import GatewayProfile

_MODULES = ["litellm", "portkey", "claude_code_router", "gomodel", "bifrost", "bricksllm"]

PROFILES: dict[str, GatewayProfile] = {}
LAUNCHERS: dict[str, type[Launcher]] = {}

for _name in _MODULES:
    _mod = importlib.import_module(f"{__name__}.{_name}")
    for _p in _mod.PROFILES:
        PROFILES[_p.name] = _p
    for _l in _mod.LAUNCHERS:
        LAUNCHERS[_l.name] = _l


def known_names() -> list[str]:
    return sorted(PROFILES)
