"""Helpers shared by the Go gateways (GoModel, Bifrost): where their binaries live, which version.

``scripts/install-go-gateways.sh`` installs each binary into :data:`~gatewaylens.capture.launch.GO_BIN`
and writes a stamp file ``<binary>.version`` next to it holding the pinned version it built, so the
script can skip work that is already done and a launcher can report the version without running
the binary.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import ClassVar

from gatewaylens.capture.launch import GO_BIN, Launcher

INSTALL_SCRIPT = "scripts/install-go-gateways.sh"


def go_binary(name: str) -> Path:
    return GO_BIN / name


def stamped_version(name: str) -> str | None:
    """The version the install script recorded for ``name``, or None when it is not installed."""
    stamp = GO_BIN / f"{name}.version"
    binary = GO_BIN / name
    if not binary.exists() or not stamp.exists():
        return None
    text = stamp.read_text(encoding="utf-8").strip()
    return text or None


def missing_reason(name: str, title: str, pinned: str, why_not_here: str | None,
                   installer: str = INSTALL_SCRIPT) -> str | None:
    """None when the pinned binary is installed, else one line saying why it cannot be launched.
    ``why_not_here`` says why the installer cannot provide it on this machine (None: it can)."""
    binary = go_binary(name)
    if not binary.exists():
        if why_not_here is None:
            return f"{title} not built: run {installer}"
        return f"{title} not installed: {why_not_here} (installer: {installer})"
    got = stamped_version(name)
    if got != pinned:
        return f"{title} at {binary} is {got or 'of unknown version'}, not the pinned {pinned}: run {installer}"
    return None


def binary_reports(binary: Path, *args: str, timeout_s: float = 10.0) -> str:
    """First line a binary prints for ``args`` (e.g. ``-version``), empty when it cannot run."""
    try:
        out = subprocess.run([str(binary), *args], capture_output=True, timeout=timeout_s, check=False,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (out.stdout or out.stderr).decode(errors="replace").strip()
    return text.splitlines()[0] if text else ""


class GoBinaryLauncher(Launcher):
    """A gateway run from its pinned binary in ``.gateways/bin`` (with a version stamp)."""

    binary: ClassVar[str] = ""
    title: ClassVar[str] = ""
    pinned: ClassVar[str] = ""
    why_not_here: ClassVar[str] = ""

    def available(self) -> str | None:
        return missing_reason(self.binary, self.title, self.pinned, self.why_not_here)

    def version(self) -> str | None:
        return stamped_version(self.binary) or binary_reports(go_binary(self.binary), "-version") or None
