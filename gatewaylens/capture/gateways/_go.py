"""Helpers shared by the Go gateways (GoModel, Bifrost): where their binaries live, which version.

``scripts/install-go-gateways.sh`` installs each binary into :data:`~gatewaylens.capture.launch.GO_BIN`
and writes a stamp file ``<binary>.version`` next to it holding the pinned version it built, so the
script can skip work that is already done and a launcher can report the version without running
the binary.

A binary the user built from their own source tree is registered instead
(``scripts/register-built-gateway.sh``, :mod:`._source`): beside the stamp it gets a
``<binary>.source.json`` record.  Such a binary is launched at the version its tree declares, which
may differ from the pin (the pin is what the sample report was made with); run.json records the
version and how the binary was built.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import ClassVar

from gatewaylens.capture.gateways._source import (
    REGISTER_SCRIPT,
    SourceError,
    read_source_build,
    trust_problem,
)
from gatewaylens.capture.launch import GO_BIN as GO_BIN  # re-exported: tests and _source read it here
from gatewaylens.capture.launch import Launcher

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


def register_hint(gateway: str | None) -> str:
    """The command that registers a binary built from source (empty for gateways without one)."""
    return f"{REGISTER_SCRIPT} {gateway} BINARY SOURCE_DIR" if gateway else ""


def missing_reason(name: str, title: str, pinned: str, why_not_here: str | None,
                   installer: str = INSTALL_SCRIPT, gateway: str | None = None) -> str | None:
    """None when the binary can be launched, else one line saying why not.

    ``why_not_here`` says why the installer cannot provide it on this machine (None: it can);
    ``gateway`` names a gateway that can instead be registered from the user's source tree.  A
    registered binary is accepted at its own version; an installed one must match the pin.
    """
    binary = go_binary(name)
    hint = register_hint(gateway)
    if not binary.exists():
        if why_not_here is None:
            return f"{title} not built: run {installer}"
        # Every skip names the command that fixes it: the installer where it works, else registering.
        fix = f"to run one you built from your own checkout: {hint}" if hint else f"installer: {installer}"
        return f"{title} not installed: {why_not_here} ({fix})"
    got = stamped_version(name)
    try:
        build = read_source_build(name)
    except SourceError as e:
        return f"{title}: {e}"
    if build is not None:
        problem = trust_problem(build, got)
        return f"{title}: {problem}" if problem else None
    if got != pinned:
        fix = f"run {installer}" + (f", or register your own build: {hint}" if hint else "")
        return f"{title} at {binary} is {got or 'of unknown version'}, not the pinned {pinned}: {fix}"
    return None


def source_build_line(name: str) -> str | None:
    """How a registered binary was built, one line (None when it was installed, not registered)."""
    try:
        build = read_source_build(name)
    except SourceError:
        return None
    return build.describe() if build else None


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
        return missing_reason(self.binary, self.title, self.pinned, self.why_not_here, gateway=self.name)

    def version(self) -> str | None:
        return stamped_version(self.binary) or binary_reports(go_binary(self.binary), "-version") or None

    def build(self) -> str | None:
        return source_build_line(self.binary)
