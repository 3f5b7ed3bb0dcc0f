"""Portkey AI gateway (open-source, npm ``@portkey-ai/gateway``).

Portkey needs no config file: each request names its provider in ``x-portkey-provider`` and the
upstream base URL in ``x-portkey-custom-host``, and the client's ``Authorization`` is forwarded as
the provider key (``x-api-key`` for Anthropic).  So the routes carry those headers, templated with
``{channel_url}``, and the launcher only starts the server on a loopback port.

Every (dialect, upstream) pair reaches the gateway: pairs it cannot translate (reported: Messages
to OpenAI, Responses to Anthropic) are kept as routes, because the answer it gives is the finding.
"""

from __future__ import annotations

from typing import ClassVar

from gatewaylens.capture.gateways import _npm
from gatewaylens.capture.launch import LaunchContext, Launched, Launcher
from gatewaylens.capture.models import GatewayProfile, HeaderRule, Route
from gatewaylens.dialects import DIALECT_PATHS, DIALECTS, Dialect, UpstreamKind

PACKAGE = "@portkey-ai/gateway"
ENTRY = "build/start-server.js"
VERSION = "1.15.2"
DEFAULT_PORT = 8787

#: Fake canary provider keys: the client sends them, Portkey forwards them upstream, and every
#: file gatewaylens writes must show them redacted.
UPSTREAM_KEYS: dict[UpstreamKind, str] = {
    "openai": "sk-gwlens-upstream-openai-portkey-5f1c",
    "anthropic": "sk-gwlens-upstream-anthropic-portkey-9a2e",
}
#: Model names sent per upstream kind (Portkey passes the model through unchanged).
MODELS: dict[UpstreamKind, str] = {
    "openai": "gpt-4.1-mini",
    "anthropic": "claude-sonnet-4-20250514",
}


def _route(dialect: Dialect, upstream: UpstreamKind) -> Route:
    return Route(
        dialect=dialect,
        upstream=upstream,
        path=DIALECT_PATHS[dialect],
        model=MODELS[upstream],
        headers={
            "x-portkey-provider": upstream,
            # Both providers' default bases end in /v1 (api.openai.com/v1, api.anthropic.com/v1).
            "x-portkey-custom-host": "{channel_url}/v1",
            "authorization": f"Bearer {UPSTREAM_KEYS[upstream]}",
        },
    )


PROFILE = GatewayProfile(
    name="portkey",
    title="Portkey AI Gateway",
    homepage="https://github.com/Portkey-AI/gateway",
    base_url=f"http://127.0.0.1:{DEFAULT_PORT}",
    routes=[_route(d, u) for d in DIALECTS for u in ("openai", "anthropic")],
    unsupported=[],
    client_headers={},
    header_policy=[
        # Portkey's design: the client's Authorization *is* the provider key (see the module doc).
        HeaderRule(name="authorization", policy="forward", note="Portkey forwards the client's key as the provider key"),
        HeaderRule(name="x-api-key", policy="forward", upstream="anthropic",
                   note="Portkey sends the client's key as Anthropic's x-api-key"),
    ],
    image=f"portkeyai/gateway:{VERSION}",
    install="scripts/install-npm-gateways.sh",
    launcher="portkey",
    version=VERSION,
    notes=(
        "Routed per request by x-portkey-provider + x-portkey-custom-host; the client's Authorization "
        "is the provider key. Started with --headless. @hono/node-server is pinned to 1.13.8 through npm "
        "overrides: with newer versions every streaming request fails with 500 (TypeError: immutable)."
    ),
)


class PortkeyLauncher(_npm.NpmLauncher):
    """``node start-server.js --port=N --headless`` on 127.0.0.1 (forced by a preload)."""

    name: ClassVar[str] = "portkey"
    ready_timeout_s: ClassVar[float] = 30.0
    title, package, entry, min_node = "Portkey gateway", PACKAGE, ENTRY, 18

    async def start(self, ctx: LaunchContext) -> Launched:
        self.require_available()
        cmd = _npm.node_command(PACKAGE, ENTRY, f"--port={ctx.port}", "--headless")
        # NODE_ENV=production also keeps the log UI and its /log/stream endpoint off.
        return await self.serve(cmd, ctx, ready_path="/", env={"NODE_ENV": "production", "PORT": str(ctx.port)})


PROFILES: list[GatewayProfile] = [PROFILE]
LAUNCHERS: list[type[Launcher]] = [PortkeyLauncher]
