"""BricksLLM (bricks-cloud/BricksLLM): a Go gateway with keys, cost limits and provider settings.

What v1.45.2 serves (``internal/server/web/proxy/proxy.go``): ``/api/providers/openai/v1/chat/completions``
and ``/api/providers/anthropic/v1/messages`` (plus embeddings, assistants, ... and
``/api/providers/vllm/v1/chat/completions``); it forwards each body to its own provider without
translating between dialects, and has no Responses endpoint.  Clients authenticate with a BricksLLM
key (``Authorization: Bearer``/``x-api-key``) that names provider settings; BricksLLM swaps in the
provider key from the setting.

Three facts shape the launcher:

* The upstream URLs are hard-coded: ``https://api.openai.com/v1/chat/completions`` in
  ``internal/server/web/proxy/chat_completion.go:33`` and ``https://api.anthropic.com/v1/messages`` in
  ``internal/server/web/proxy/anthropic.go:313``; no setting or variable changes them (only the vLLM
  provider's ``url`` setting and custom providers' ``target_url`` are configurable).
* The ports are hard-coded too: ``:8001`` (admin, ``admin.go``) and ``:8002`` (proxy, ``proxy.go``),
  every interface.
* It needs PostgreSQL and Redis (11 Redis DBs, tables created at start).

So the launcher runs BricksLLM, a private PostgreSQL cluster and a private redis-server inside a
network namespace of their own that has only a loopback interface (nothing can leave it), with
``/etc/hosts`` mapping api.openai.com and api.anthropic.com to 127.0.0.1 and a throwaway CA in
``SSL_CERT_FILE``.  A forwarder there (:mod:`._netns_bridge`) plays both hosts over TLS and passes
every request unchanged to this gateway's mock channel; the gateway's proxy port is relayed to a free
loopback port on the host.  BricksLLM's own code path is the one users run; only DNS and trust are
arranged.  Needs root (namespaces, running PostgreSQL as the ``postgres`` user).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from gatewaylens.capture.gateways._go import go_binary, missing_reason, stamped_version
from gatewaylens.capture.launch import (
    TOOLS_DIR,
    LaunchContext,
    Launched,
    Launcher,
    LaunchError,
    _terminate,
    free_port,
)
from gatewaylens.capture.models import GatewayProfile, Route, Unsupported
from gatewaylens.datafiles import checkout_root

NAME = "bricksllm"
MODULE = "github.com/bricks-cloud/bricksllm"
MAIN_PACKAGE = f"{MODULE}/cmd/bricksllm"
PINNED_VERSION = "v1.45.2"
#: Published by the project's release workflow (docker/metadata-action, semver tags without "v").
IMAGE = "luyuanxin1995/bricksllm:1.45.2"
INSTALL_SCRIPT = "scripts/install-bricksllm.sh"

#: Obviously fake canaries.  The client key is created through the admin API at launch.
CLIENT_KEY = "sk-gwlens-client-bricksllm-5e6f7a8b"
UPSTREAM_OPENAI_KEY = "sk-gwlens-upstream-openai-bricksllm-1a2b3c"
UPSTREAM_ANTHROPIC_KEY = "sk-ant-gwlens-upstream-bricksllm-4d5e6f"
UPSTREAM_VLLM_KEY = "sk-gwlens-upstream-openai-bricksllm-vllm-7a8b9c"

#: Fixed ports inside the namespace (BricksLLM's are not configurable; the others need not be).
ADMIN_PORT, PROXY_PORT, PG_PORT, REDIS_PORT, PLAIN_FORWARD_PORT = 8001, 8002, 5432, 6379, 8090
INTERCEPTED_HOSTS = ("api.openai.com", "api.anthropic.com")
PG_BIN_ROOT = Path("/usr/lib/postgresql")

#: BricksLLM's token counters (tiktoken-go) fetch BPE files from openaipublic.blob.core.windows.net
#: at start unless they are in TIKTOKEN_CACHE_DIR under sha1(url).  The install script fills this
#: directory from the Go module github.com/pkoukk/tiktoken-go-loader (which embeds them).
TIKTOKEN_DIR = TOOLS_DIR / "share" / "tiktoken"
#: the bridges run ``python -m gatewaylens...``: from a checkout, its root makes the package importable
#: even without an install; an installed package is importable from anywhere.
BRIDGE_CWD = checkout_root() or Path(tempfile.gettempdir())
TIKTOKEN_ENCODINGS = ("r50k_base", "p50k_base", "cl100k_base", "o200k_base")


def tiktoken_cache_name(encoding: str) -> str:
    url = f"https://openaipublic.blob.core.windows.net/encodings/{encoding}.tiktoken"
    return hashlib.sha1(url.encode()).hexdigest()


HARD_CODED = ("BricksLLM hard-codes https://api.openai.com and https://api.anthropic.com "
              "(proxy/chat_completion.go:33, proxy/anthropic.go:313)")


def _routes() -> list[Route]:
    return [
        Route(dialect="chat", upstream="openai", path="/api/providers/openai/v1/chat/completions"),
        # The vLLM provider is BricksLLM's one native chat route whose upstream URL is a setting.
        Route(dialect="chat", upstream="openai", path="/api/providers/vllm/v1/chat/completions", variant="vllm"),
        Route(dialect="messages", upstream="anthropic", path="/api/providers/anthropic/v1/messages"),
    ]


def _unsupported() -> list[Unsupported]:
    no_translation = "BricksLLM forwards each provider's own API and does not translate between dialects"
    no_responses = "BricksLLM v1.45.2 has no /v1/responses endpoint (its OpenAI routes predate the Responses API)"
    return [
        Unsupported(dialect="chat", upstream="anthropic", reason=no_translation),
        Unsupported(dialect="messages", upstream="openai", reason=no_translation),
        Unsupported(dialect="responses", upstream="openai", reason=no_responses),
        Unsupported(dialect="responses", upstream="anthropic", reason=no_responses),
    ]


PROFILES: list[GatewayProfile] = [
    GatewayProfile(
        name=NAME,
        title="BricksLLM",
        homepage="https://github.com/bricks-cloud/BricksLLM",
        base_url="http://127.0.0.1:8002",
        routes=_routes(),
        unsupported=_unsupported(),
        client_headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        image=IMAGE,
        install=INSTALL_SCRIPT,
        launcher=NAME,
        version=PINNED_VERSION,
        notes=(f"{HARD_CODED}; the local launcher runs it in a private network namespace where those names "
               "resolve to a loopback forwarder to the mock channel (needs root). Ports 8001 (admin) and "
               "8002 (proxy) are fixed. Needs PostgreSQL and Redis. Client key created via the admin API."),
    )
]


# --------------------------------------------------------------------------------------------
# Local launch
# --------------------------------------------------------------------------------------------


def pg_bin_dir() -> Path | None:
    """Newest PostgreSQL server installed from Debian's packages (``/usr/lib/postgresql/<ver>/bin``)."""
    if not PG_BIN_ROOT.is_dir():
        return None
    cands = sorted((p for p in PG_BIN_ROOT.iterdir() if (p / "bin" / "initdb").exists()),
                   key=lambda p: int(p.name) if p.name.isdigit() else 0)
    return cands[-1] / "bin" if cands else None


def bricksllm_env(admin_pass: str) -> dict[str, str]:
    """BricksLLM's environment inside the namespace: private stores, no telemetry, our CA only."""
    return {
        "POSTGRESQL_HOSTS": "127.0.0.1",
        "POSTGRESQL_PORT": str(PG_PORT),
        "POSTGRESQL_DB_NAME": "postgres",
        "POSTGRESQL_USERNAME": "bricksllm",
        "POSTGRESQL_PASSWORD": "",
        "POSTGRESQL_SSL_MODE": "disable",
        "REDIS_HOSTS": "127.0.0.1",
        "REDIS_PORT": str(REDIS_PORT),
        # Telemetry off: statsd client disabled, Prometheus listener (":2112") not started.
        "TELEMETRY_PROVIDER": "statsd",
        "STATS_ENABLED": "false",
        "PROMETHEUS_ENABLED": "false",
        "ADMIN_PASS": admin_pass,
        "IN_MEMORY_DB_UPDATE_INTERVAL": "1s",
        "PROXY_TIMEOUT": "120s",
        # The AWS SDK (PII detector client) must not look for instance metadata.
        "AWS_EC2_METADATA_DISABLED": "true",
        "TIKTOKEN_CACHE_DIR": str(TIKTOKEN_DIR),
    }


def _run(cmd: list[str], what: str, timeout_s: float = 60.0) -> None:
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LaunchError(f"{what} failed: {e}") from e
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).decode(errors="replace").strip().splitlines()[-1:]
        raise LaunchError(f"{what} failed (exit {out.returncode}): {' '.join(tail)[:200]}")


def make_certs(d: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a leaf certificate for the intercepted hosts (openssl CLI)."""
    ca_key, ca_crt, key, csr, crt = (d / n for n in ("ca.key", "ca.pem", "leaf.key", "leaf.csr", "leaf.pem"))
    ext = d / "leaf.ext"
    ext.write_text("subjectAltName=" + ",".join(f"DNS:{h}" for h in INTERCEPTED_HOSTS) + "\n"
                   "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\n", encoding="utf-8")
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
          "/CN=gatewaylens throwaway CA", "-keyout", str(ca_key), "-out", str(ca_crt)], "openssl CA")
    _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={INTERCEPTED_HOSTS[0]}",
          "-keyout", str(key), "-out", str(csr)], "openssl CSR")
    _run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
          "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt)], "openssl sign")
    return ca_crt, crt, key


class BricksLLMLauncher(Launcher):
    name = NAME
    ready_timeout_s = 90.0

    def __init__(self) -> None:
        super().__init__()
        self._ns_holder: subprocess.Popen[bytes] | None = None
        self._postgres: subprocess.Popen[bytes] | None = None
        self._ordered: list[subprocess.Popen[bytes]] = []
        self._shared: Path | None = None

    def available(self) -> str | None:
        missing = missing_reason(NAME, "BricksLLM", PINNED_VERSION, None, installer=INSTALL_SCRIPT)
        if missing:
            return missing
        if not all((TIKTOKEN_DIR / tiktoken_cache_name(e)).exists() for e in TIKTOKEN_ENCODINGS):
            return f"tiktoken BPE files missing in {TIKTOKEN_DIR}: run {INSTALL_SCRIPT}"
        if pg_bin_dir() is None:
            return f"PostgreSQL server not installed (Debian package postgresql): run {INSTALL_SCRIPT}"
        if shutil.which("redis-server") is None:
            return f"redis-server not installed (Debian package redis-server): run {INSTALL_SCRIPT}"
        for tool in ("unshare", "nsenter", "setpriv", "openssl", "ip"):
            if shutil.which(tool) is None:
                return f"{tool} not found (needed to run BricksLLM in a private network namespace)"
        if os.geteuid() != 0:
            return (f"{HARD_CODED} and fixed ports 8001/8002: the launcher needs root to give it a private "
                    "network namespace")
        return None

    def version(self) -> str | None:
        return stamped_version(NAME)

    # --- helpers ------------------------------------------------------------------------------
    def _ns(self, *cmd: str) -> list[str]:
        """``cmd`` run inside the namespace (network and mount) held by the holder process."""
        assert self._ns_holder is not None
        pid = self._ns_holder.pid
        return ["nsenter", f"--net=/proc/{pid}/ns/net", f"--mount=/proc/{pid}/ns/mnt", "--", *cmd]

    def _spawn(self, cmd: list[str], ctx: LaunchContext, log_name: str, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> subprocess.Popen[bytes]:
        proc = self.spawn(cmd, ctx, env=env, cwd=cwd, log_name=log_name)
        self._ordered.append(proc)
        return proc

    async def _wait_path(self, path: Path, proc: subprocess.Popen[bytes], what: str, log: Path,
                         timeout_s: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not await asyncio.to_thread(path.exists):
            if proc.poll() is not None:
                raise LaunchError(f"{what} exited with code {proc.returncode}: {_tail(log)}")
            if asyncio.get_running_loop().time() > deadline:
                raise LaunchError(f"{what} not ready after {timeout_s:.0f}s: {_tail(log)}")
            await asyncio.sleep(0.1)

    # --- start --------------------------------------------------------------------------------
    async def start(self, ctx: LaunchContext) -> Launched:
        reason = self.available()
        if reason:
            raise LaunchError(reason)
        try:
            return await self._start(ctx)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, ctx: LaunchContext) -> Launched:
        wd = ctx.workdir
        wd.mkdir(parents=True, exist_ok=True)
        pg_bin = pg_bin_dir()
        assert pg_bin is not None
        # PostgreSQL runs as the postgres user, which may not traverse the workdir's parents (pytest's
        # tmp dirs are 0700): its data dir and every Unix socket live in a run-owned dir under the
        # shared temp dir, removed by stop().
        self._shared = Path(tempfile.mkdtemp(prefix="gatewaylens-bricksllm-", dir=_traversable_tmp()))
        os.chmod(self._shared, 0o755)
        sock = self._shared / "sock"
        sock.mkdir(mode=0o755)
        certs = wd / "certs"
        certs.mkdir(exist_ok=True)
        ca, leaf, leaf_key = await asyncio.to_thread(make_certs, certs)
        hosts = wd / "hosts"
        hosts.write_text("127.0.0.1\tlocalhost " + " ".join(INTERCEPTED_HOSTS) + "\n::1\tlocalhost\n",
                         encoding="utf-8")

        # 1. The namespace: only a loopback interface; /etc/hosts replaced in its own mount namespace.
        holder_log = wd / "netns.log"
        self._ns_holder = self._spawn(
            ["unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c",
             f'ip link set lo up && mount --bind "{hosts}" /etc/hosts && touch "{wd / "netns.ready"}" && exec sleep 2147483647'],
            ctx, "netns.log")
        await self._wait_path(wd / "netns.ready", self._ns_holder, "network namespace", holder_log, 10)

        # 2. PostgreSQL: a private cluster owned by the postgres user, trust auth inside the namespace.
        pgdata = self._shared / "pgdata"
        pgdata.mkdir(mode=0o700)
        shutil.chown(pgdata, "postgres", "postgres")
        shutil.chown(sock, "postgres", "postgres")
        as_pg = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        await asyncio.to_thread(_run, [*as_pg, str(pg_bin / "initdb"), "-D", str(pgdata), "-U", "bricksllm",
                                       "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"], "initdb", 120)
        pg_log = wd / "postgres.log"
        self._postgres = self._spawn(self._ns(*as_pg, str(pg_bin / "postgres"), "-D", str(pgdata), "-p", str(PG_PORT),
                                              "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sock}",
                                              "-c", "fsync=off", "-c", "logging_collector=off"), ctx, "postgres.log")
        await self._wait_path(sock / f".s.PGSQL.{PG_PORT}", self._postgres, "PostgreSQL", pg_log, 30)

        # 3. Redis: no persistence, loopback of the namespace only.
        redis_dir = wd / "redis"
        redis_dir.mkdir(exist_ok=True)
        redis = self._spawn(self._ns("redis-server", "--bind", "127.0.0.1", "--port", str(REDIS_PORT), "--save", "",
                                     "--appendonly", "no", "--dir", str(redis_dir), "--unixsocket",
                                     str(sock / "redis.sock"), "--unixsocketperm", "700"), ctx, "redis.log")
        await self._wait_path(sock / "redis.sock", redis, "redis-server", wd / "redis.log", 20)

        # 4. Bridges: mock <- namespace (TLS forwarder), host port -> BricksLLM proxy/admin ports.
        mock = urlsplit(ctx.channel_url)
        prefix = mock.path.rstrip("/")
        bridge = [sys.executable, "-m", "gatewaylens.capture.gateways._netns_bridge"]
        host_ready, ns_ready = wd / "bridge-host.ready", wd / "bridge-ns.ready"
        admin_port = free_port()
        host_bridge = self._spawn([*bridge, "--relay", f"unix:{sock / 'mock.sock'}>tcp:{mock.hostname}:{mock.port or 80}",
                                   "--relay", f"tcp:127.0.0.1:{ctx.port}>unix:{sock / 'proxy.sock'}",
                                   "--relay", f"tcp:127.0.0.1:{admin_port}>unix:{sock / 'admin.sock'}",
                                   "--ready-file", str(host_ready)], ctx, "bridge-host.log", cwd=BRIDGE_CWD)
        ns_bridge = self._spawn(self._ns(*bridge, "--relay", f"unix:{sock / 'proxy.sock'}>tcp:127.0.0.1:{PROXY_PORT}",
                                         "--relay", f"unix:{sock / 'admin.sock'}>tcp:127.0.0.1:{ADMIN_PORT}",
                                         "--http", "127.0.0.1:443", "--http", f"127.0.0.1:{PLAIN_FORWARD_PORT}",
                                         "--tls-cert", str(leaf), "--tls-key", str(leaf_key),
                                         "--upstream-unix", str(sock / "mock.sock"), "--prefix", prefix,
                                         "--ready-file", str(ns_ready)), ctx, "bridge-ns.log", cwd=BRIDGE_CWD)
        await self._wait_path(host_ready, host_bridge, "host bridge", wd / "bridge-host.log")
        await self._wait_path(ns_ready, ns_bridge, "namespace bridge", wd / "bridge-ns.log")

        # 5. BricksLLM itself: cwd in the workdir (no stray .env), trusts only the throwaway CA.
        admin_pass = os.urandom(12).hex()
        env = {**bricksllm_env(admin_pass), "SSL_CERT_FILE": str(ca), "SSL_CERT_DIR": str(certs)}
        gw = self._spawn(self._ns(str(go_binary(NAME)), "-m", "dev", "-p", "strict"), ctx, f"{NAME}.log", env=env)
        self.proc, self.log_path = gw, wd / f"{NAME}.log"
        base = f"http://127.0.0.1:{ctx.port}"
        await self.wait_ready(f"{base}/api/health", proc=gw)
        await self.wait_ready(f"http://127.0.0.1:{admin_port}/api/health", proc=gw)
        await self._configure(f"http://127.0.0.1:{admin_port}", admin_pass)
        return Launched(base_url=base, version=self.version(), log_path=self.log_path)

    async def _configure(self, admin: str, admin_pass: str) -> None:
        """Provider settings with canary keys, then the client key that may use all of them."""
        self.note_secrets(admin_pass, CLIENT_KEY, UPSTREAM_OPENAI_KEY, UPSTREAM_ANTHROPIC_KEY, UPSTREAM_VLLM_KEY)
        settings = [
            {"provider": "openai", "name": "gwlens-openai", "setting": {"apikey": UPSTREAM_OPENAI_KEY}},
            {"provider": "anthropic", "name": "gwlens-anthropic", "setting": {"apikey": UPSTREAM_ANTHROPIC_KEY}},
            # The vLLM handler appends /v1/chat/completions to this URL: the namespace's plain forwarder.
            {"provider": "vllm", "name": "gwlens-vllm",
             "setting": {"url": f"http://127.0.0.1:{PLAIN_FORWARD_PORT}", "apikey": UPSTREAM_VLLM_KEY}},
        ]
        async with httpx.AsyncClient(timeout=15.0, trust_env=False, headers={"X-API-KEY": admin_pass}) as c:
            ids: list[str] = []
            for s in settings:
                r = await c.put(f"{admin}/api/provider-settings", json=s)
                if r.status_code != 200:
                    raise LaunchError(f"creating the {s['provider']} provider setting failed: HTTP {r.status_code}")
                ids.append(str(r.json()["id"]))
            r = await c.put(f"{admin}/api/key-management/keys", json={
                "name": "gatewaylens", "key": CLIENT_KEY, "tags": ["gatewaylens"], "settingIds": ids})
            if r.status_code != 200:
                raise LaunchError(f"creating the BricksLLM client key failed: HTTP {r.status_code}: {r.text[:200]}")

    # --- stop ---------------------------------------------------------------------------------
    async def stop(self) -> None:
        """BricksLLM first, then PostgreSQL (fast shutdown), Redis, the bridges, the namespace."""
        procs = list(reversed(self._ordered))
        # reversed start order is: bricksllm, ns bridge, host bridge, redis, postgres, holder
        for proc in procs:
            if proc is self._postgres and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGINT)  # "fast" shutdown: no waiting for clients
                with contextlib.suppress(subprocess.TimeoutExpired):
                    await asyncio.to_thread(proc.wait, 15)
            await asyncio.to_thread(_terminate, proc)
        self._ordered = []
        self._ns_holder = self._postgres = None
        if self._shared is not None:
            await asyncio.to_thread(shutil.rmtree, self._shared, True)
            self._shared = None
        self.proc = None
        self.extra_procs = []


def _traversable_tmp() -> str:
    """The temp dir if other users can traverse it (PostgreSQL runs as postgres), else /tmp."""
    tmp = tempfile.gettempdir()
    return tmp if os.stat(tmp).st_mode & 0o001 else "/tmp"


def _tail(log: Path, lines: int = 3) -> str:
    if not log.exists():
        return ""
    from gatewaylens.dialects import redact_value

    tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
    return redact_value(" | ".join(t.strip()[:200] for t in tail))


LAUNCHERS: list[type[Launcher]] = [BricksLLMLauncher]
