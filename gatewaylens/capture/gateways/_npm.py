"""Shared helpers for the Node.js gateways installed from ``gateways/npm`` (Portkey, claude-code-router).

The packages are pinned in ``gateways/npm/package.json`` + ``package-lock.json`` and installed by
``scripts/install-npm-gateways.sh`` (``npm ci``) into ``gateways/npm/node_modules``.
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

from gatewaylens.capture.launch import NPM_DIR, Launcher, which
from gatewaylens.datafiles import data_path, install_hint

INSTALL_HINT = install_hint("install-npm-gateways.sh", "portkey claude-code-router")
#: Preload that turns "listen on all interfaces" into "listen on 127.0.0.1" (see the file); shipped data.
LOOPBACK_PRELOAD = data_path("gateways/npm/loopback-only.cjs")
#: The pins: the shipped manifest (the gateways home holds a copy once installed from a wheel).
PINNED_MANIFEST = data_path("gateways/npm/package.json")


def package_dir(package: str) -> Path:
    return NPM_DIR / "node_modules" / package


def pinned_version(package: str) -> str | None:
    """The exact version ``gateways/npm/package.json`` pins for ``package``."""
    try:
        deps = json.loads(PINNED_MANIFEST.read_text())["dependencies"]
    except (OSError, ValueError, KeyError):
        return None
    v = deps.get(package)
    return str(v) if v else None


def installed_version(package: str) -> str | None:
    try:
        return str(json.loads((package_dir(package) / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


@lru_cache(maxsize=1)
def node_major() -> int | None:
    node = which("node")
    if not node:
        return None
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"v(\d+)\.", out.strip())
    return int(m.group(1)) if m else None


def availability(title: str, package: str, entry: str, min_node: int) -> str | None:
    """None when ``package`` is installed at its pinned version and Node.js is recent enough."""
    major = node_major()
    if major is None:
        return f"{title} needs Node.js >= {min_node}: node not found on PATH"
    if major < min_node:
        return f"{title} needs Node.js >= {min_node}, found v{major}"
    if not (package_dir(package) / entry).exists():
        return f"{title} not installed: {INSTALL_HINT}"
    pinned, installed = pinned_version(package), installed_version(package)
    if pinned and installed != pinned:
        return f"{title} {installed} installed but {pinned} is pinned: {INSTALL_HINT}"
    return None


def node_command(package: str, entry: str, *args: str) -> list[str]:
    """``node --require <loopback preload> <package entry> args...``."""
    node = which("node") or "node"
    return [node, "--require", str(LOOPBACK_PRELOAD), str(package_dir(package) / entry), *args]


class NpmLauncher(Launcher):
    """A gateway run with Node.js from its pinned package in ``gateways/npm``."""

    title: ClassVar[str] = ""
    package: ClassVar[str] = ""
    entry: ClassVar[str] = ""
    min_node: ClassVar[int] = 18

    def available(self) -> str | None:
        return availability(self.title, self.package, self.entry, min_node=self.min_node)

    def version(self) -> str | None:
        return installed_version(self.package)
