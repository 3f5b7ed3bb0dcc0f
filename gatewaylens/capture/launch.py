"""Launching gateways as local processes on loopback, pointed at their mock channel.

A :class:`Launcher` knows one gateway: whether it is installed here (``available``), how to write
its config into a private temp dir (never the user's home) and start it on a free loopback port,
and how to stop it.  :class:`Launcher` itself does the common work (``spawn`` in its own
process group, log to a file, ``wait_ready`` with a bound, ``stop`` with SIGTERM then SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx

from gatewaylens.datafiles import checkout_root, gateways_home, tools_dir
from gatewaylens.errors import GatewaylensError

#: Where the install scripts put the gateways (see :mod:`gatewaylens.datafiles`): the checkout when
#: run from one, else ``$GATEWAYLENS_HOME`` or ``~/.cache/gatewaylens`` — never ``site-packages``.
GATEWAYS_HOME = gateways_home()
#: kept for the tests and scripts that read checkout files through it: the checkout, else the home
PROJECT_ROOT = checkout_root() or GATEWAYS_HOME
TOOLS_DIR = tools_dir()
GO_BIN = TOOLS_DIR / "bin"
NPM_DIR = GATEWAYS_HOME / "gateways" / "npm"


class LaunchError(GatewaylensError, RuntimeError):
    """A gateway could not be started; the message is one line saying why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LaunchContext:
    """What a launcher needs to start its gateway."""

    channel_url: str  # e.g. http://127.0.0.1:9999/ch/litellm  (no trailing slash)
    mock_url: str  # e.g. http://127.0.0.1:9999
    port: int  # free loopback port chosen for the gateway
    workdir: Path  # private temp dir: config, HOME, state, logs
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Launched:
    base_url: str
    version: str | None = None
    log_path: Path | None = None
    #: How the binary was built when it did not come from the project's installers (one line).
    build: str | None = None


class Launcher:
    """Base class: one gateway's local launch recipe."""

    name: ClassVar[str] = ""
    ready_timeout_s: ClassVar[float] = 60.0

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.extra_procs: list[subprocess.Popen[bytes]] = []
        #: credentials this launch handed to the gateway (environment, generated config, admin API);
        #: capture registers them with its scrubber so no output can carry them.
        self.secrets: set[str] = set()

    # --- to override --------------------------------------------------------------------
    def available(self) -> str | None:
        """None when the gateway can be launched here, else a one-line reason."""
        raise NotImplementedError

    def version(self) -> str | None:
        return None

    def build(self) -> str | None:
        """One line on how a binary the user built and registered was made (None: installed here)."""
        return None

    async def start(self, ctx: LaunchContext) -> Launched:
        raise NotImplementedError

    # --- shared machinery ----------------------------------------------------------------
    def note_secrets(self, *values: str) -> None:
        """Credentials given to the gateway some other way (an admin API call)."""
        self.secrets.update(v for v in values if v)

    def note_config(self, config: Any) -> None:
        """A generated config: every credential in it (by key name and value shape)."""
        from gatewaylens.capture.secrets import json_secrets

        self.secrets |= json_secrets(config)

    def require_available(self) -> None:
        """Raise :class:`LaunchError` with the one-line reason when the gateway cannot run here."""
        reason = self.available()
        if reason:
            raise LaunchError(reason)

    async def serve(self, cmd: list[str], ctx: LaunchContext, *, ready_path: str, env: dict[str, str] | None = None,
                    cwd: Path | None = None) -> Launched:
        """Spawn ``cmd``, wait until ``ready_path`` answers on ``ctx.port``, and describe the result."""
        self.spawn(cmd, ctx, env=env, cwd=cwd)
        base_url = f"http://127.0.0.1:{ctx.port}"
        await self.wait_ready(base_url + ready_path)
        return Launched(base_url=base_url, version=self.version(), log_path=self.log_path, build=self.build())

    def spawn(self, cmd: list[str], ctx: LaunchContext, env: dict[str, str] | None = None,
              cwd: Path | None = None, log_name: str | None = None) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in its own process group with a clean HOME inside the workdir."""
        home = ctx.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "TMPDIR": str(ctx.workdir),
            "LANG": "C.UTF-8",
            # Keep gateways offline and quiet: no telemetry, no update checks.
            "DO_NOT_TRACK": "1",
            "NO_UPDATE_NOTIFIER": "1",
            "NPM_CONFIG_UPDATE_NOTIFIER": "false",
        }
        full_env.update(ctx.env)
        full_env.update(env or {})
        from gatewaylens.capture.secrets import env_secrets

        self.secrets |= env_secrets({**ctx.env, **(env or {})})
        log_path = ctx.workdir / (log_name or f"{self.name}.log")
        log = log_path.open("ab")
        proc = subprocess.Popen(cmd, env=full_env, cwd=str(cwd or ctx.workdir), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        if self.proc is None:
            self.proc, self.log_path = proc, log_path
        else:
            self.extra_procs.append(proc)
        return proc

    async def wait_ready(self, url: str, timeout_s: float | None = None, ok_statuses: tuple[int, ...] = (200,),
                         proc: subprocess.Popen[bytes] | None = None) -> None:
        """Poll ``url`` until it answers one of ``ok_statuses``; fail if the process exits or time runs out."""
        proc = proc or self.proc
        deadline = time.monotonic() + (timeout_s or self.ready_timeout_s)
        last = "no answer"
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if proc is not None and proc.poll() is not None:
                    raise LaunchError(f"{self.name} exited with code {proc.returncode} before it was ready: {self.log_tail()}")
                try:
                    r = await client.get(url)
                    if r.status_code in ok_statuses:
                        return
                    last = f"HTTP {r.status_code}"
                except httpx.HTTPError as e:
                    last = type(e).__name__
                await asyncio.sleep(0.25)
        raise LaunchError(f"{self.name} not ready at {url} after {timeout_s or self.ready_timeout_s:.0f}s ({last}): {self.log_tail()}")

    def log_tail(self, lines: int = 3) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        from gatewaylens.dialects import redact_value

        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
        return redact_value(" | ".join(t.strip()[:200] for t in tail))

    async def stop(self) -> None:
        for proc in [*([self.proc] if self.proc else []), *self.extra_procs]:
            await asyncio.to_thread(_terminate, proc)
        self.proc = None
        self.extra_procs = []


def _terminate(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace_s)


def which(name: str, *extra_dirs: Path) -> str | None:
    for d in extra_dirs:
        cand = d / name
        if cand.exists() and os.access(cand, os.X_OK):
            return str(cand)
    return shutil.which(name)


def make_workdir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"gatewaylens-{name}-"))
