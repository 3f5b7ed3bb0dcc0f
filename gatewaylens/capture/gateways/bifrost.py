"""Bifrost (maximhq/bifrost), its HTTP transport ``bifrost-http``.

What the transport serves: the unified OpenAI-shaped API (``/v1/chat/completions``,
``/v1/responses``) where the model is ``provider/model``, and drop-in integrations that accept a
provider's native shape, e.g. ``/anthropic/v1/messages`` (Anthropic Messages, converted to
Bifrost's Responses form and sent to whichever provider the model names) and, since transport
v1.4.12, ``/anthropic_passthrough/...`` which forwards the body untranslated to Anthropic.

Configuration: ``config.json`` in ``-app-dir`` with ``config_store`` disabled (file mode, no UI
database); each provider has ``keys`` (``env.VAR`` references, so no secret is written) and
``network_config.base_url`` *without* ``/v1`` (the provider appends ``/v1/chat/completions``,
``/v1/responses``, ``/v1/messages``).  Bifrost downloads a model-pricing datasheet at start; the
generated config points ``framework.pricing.pricing_url`` at a closed loopback port so it stays
offline.  It binds ``-host 127.0.0.1`` (its default is localhost).

Schema: at every start Bifrost validates ``config.json`` against ``config.schema.json``, read from its
working directory (``lib/validator.go: localSchemaCandidates``) and otherwise downloaded from its
website.  The launcher copies ``.gateways/bin/bifrost-http.schema.json`` (the source tree's
``transports/config.schema.json``, copied there when the binary is installed or registered) into
the workdir it starts Bifrost in, and refuses to start Bifrost without it, so nothing is fetched.

What it skips at start with this config (transports v1.4.14, as its log says): with
``config_store`` disabled, ``server/server.go`` logs "auth middleware requires config store, skipping
auth middleware initialization", so the client's key is never checked; the governance plugin fails
to start ("governance config is nil", ``plugins/governance/store.go``, logged by
``server/utils.go``) and stays in status ``error``, so no virtual key, budget or rate limit applies;
the pricing manager cannot download its datasheet (pointed at a closed port), so no cost is computed.

Installing: ``go install github.com/maximhq/bifrost/transports/bifrost-http@v1.6.6`` cannot work
as is: ``main.go`` embeds a ``ui/`` directory (``//go:embed all:ui``) that the published module does
not contain, so the installer copies the module from the module cache, adds a one-file UI stub
and builds that.  On this build machine the Go module proxy refuses every
``github.com/maximhq/bifrost/*`` version (403), so the installer cannot build it here; a binary
you built from your own checkout is registered with ``scripts/register-built-gateway.sh bifrost``
and then runs at the version its tree declares (``transports/version``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from gatewaylens.capture.gateways._go import GoBinaryLauncher, go_binary
from gatewaylens.capture.launch import LaunchContext, Launched, Launcher
from gatewaylens.capture.models import GatewayProfile, Route

NAME = "bifrost"
BINARY = "bifrost-http"
#: Transport release pinned (tag ``transports/v1.6.6``, 2026-07-24: core v1.7.4, framework v1.5.4).
#: The newest v1 line: transports v2.x tags cannot be fetched by ``go install`` because the
#: module path has no ``/v2`` suffix.
PINNED_VERSION = "v1.6.6"
#: Named in the v1.6.6 release notes ("maximhq/bifrost:v1.6.6"); not pulled here.
IMAGE = "maximhq/bifrost:v1.6.6"

CLIENT_KEY = "sk-gwlens-client-bifrost-1a2b3c4d"
UPSTREAM_OPENAI_KEY = "sk-gwlens-upstream-openai-bifrost-5e6f7a"
UPSTREAM_ANTHROPIC_KEY = "sk-ant-gwlens-upstream-bifrost-8b9c0d"

#: Every model the shipped corpus names (a test checks), so no case fails with Bifrost's "no keys found
#: that support model": a key serves only the models it lists.
OPENAI_MODELS = ["gpt-4o-mini", "gpt-4.1", "o4-mini", "gwl-mock-model"]
ANTHROPIC_MODELS = ["claude-3-5-haiku-latest", "claude-3-7-sonnet-latest", "claude-sonnet-4-5", "claude-opus-4-5"]
OPENAI_MODEL = "openai/gpt-4o-mini"
ANTHROPIC_MODEL = "anthropic/claude-3-5-haiku-latest"

#: Where Bifrost would fetch its pricing datasheet: a closed loopback port (discard), so the
#: download fails at once and nothing leaves the machine.
OFFLINE_PRICING_URL = "http://127.0.0.1:9/gatewaylens-offline/pricing.json"

WHY_NOT_INSTALLABLE = ("cannot be installed here: the Go module proxy refuses github.com/maximhq/bifrost/* "
                       "(403 for transports v1.3.0, v1.5.3, v1.6.6 and core v1.5.11, v1.6.2, v1.15.2)")

#: What Bifrost's config declares as its schema; without it Bifrost prints a warning box at start
#: (``lib/config.go``).  Only a label: the schema itself is read from the local file below.
SCHEMA_ID = "https://www.getbifrost.ai/schema"
#: Beside the binary in .gateways/bin; copied into the workdir as ``config.schema.json``.
SCHEMA_FILE = f"{BINARY}.schema.json"


def bifrost_config(channel_url: str) -> dict[str, Any]:
    """Bifrost's ``config.json`` pointing the OpenAI and Anthropic providers at one mock channel."""
    base = channel_url.rstrip("/")

    def provider(kind: str, env_var: str, models: list[str]) -> dict[str, Any]:
        return {
            "keys": [{"name": f"gwlens-{kind}", "value": f"env.{env_var}", "models": models, "weight": 1.0}],
            "network_config": {"base_url": base, "default_request_timeout_in_seconds": 60, "max_retries": 0},
        }

    return {
        "$schema": SCHEMA_ID,
        "client": {"drop_excess_requests": False, "enable_logging": False, "allow_direct_keys": False},
        "providers": {
            "openai": provider("openai", "GWLENS_UPSTREAM_OPENAI_KEY", OPENAI_MODELS),
            "anthropic": provider("anthropic", "GWLENS_UPSTREAM_ANTHROPIC_KEY", ANTHROPIC_MODELS),
        },
        # File mode: no config database, no log database, no UI state.
        "config_store": {"enabled": False},
        "logs_store": {"enabled": False},
        "framework": {"pricing": {"pricing_url": OFFLINE_PRICING_URL, "pricing_sync_interval": 86400}},
    }


def bifrost_env() -> dict[str, str]:
    return {
        "GWLENS_UPSTREAM_OPENAI_KEY": UPSTREAM_OPENAI_KEY,
        "GWLENS_UPSTREAM_ANTHROPIC_KEY": UPSTREAM_ANTHROPIC_KEY,
    }


def write_config(app_dir: Path, channel_url: str) -> Path:
    app_dir.mkdir(parents=True, exist_ok=True)
    path = app_dir / "config.json"
    path.write_text(json.dumps(bifrost_config(channel_url), indent=2) + "\n", encoding="utf-8")
    return path


PROFILE = GatewayProfile(
    name=NAME,
    title="Bifrost",
    homepage="https://github.com/maximhq/bifrost",
    base_url="http://127.0.0.1:8082",  # as docker-compose.yml publishes it (8080 is GoModel's)
    routes=[
        Route(dialect="chat", upstream="openai", path="/v1/chat/completions", model=OPENAI_MODEL),
        Route(dialect="chat", upstream="anthropic", path="/v1/chat/completions", model=ANTHROPIC_MODEL),
        Route(dialect="responses", upstream="openai", path="/v1/responses", model=OPENAI_MODEL),
        Route(dialect="responses", upstream="anthropic", path="/v1/responses", model=ANTHROPIC_MODEL),
        # The Anthropic drop-in integration routes by the provider prefix of the model.
        Route(dialect="messages", upstream="openai", path="/anthropic/v1/messages", model=OPENAI_MODEL),
        Route(dialect="messages", upstream="anthropic", path="/anthropic/v1/messages", model=ANTHROPIC_MODEL),
        Route(dialect="messages", upstream="anthropic", path="/anthropic_passthrough/v1/messages", passthrough=True,
              variant="passthrough"),
    ],
    unsupported=[],
    client_headers={"Authorization": f"Bearer {CLIENT_KEY}"},
    image=IMAGE,
    install=f"scripts/install-go-gateways.sh bifrost (transports {PINNED_VERSION}), or a binary built from your "
            "checkout: scripts/register-built-gateway.sh bifrost BINARY SOURCE_DIR",
    launcher=NAME,
    version=PINNED_VERSION,
    notes="The Go module proxy here refuses github.com/maximhq/bifrost/* (403): register a binary built from "
          "your checkout (scripts/register-built-gateway.sh bifrost). Model names are provider/model. Provider "
          "retries disabled (max_retries 0) so one client request maps to one upstream call unless Bifrost adds "
          "its own. File mode (no config store): Bifrost skips its auth middleware, so the client key is never "
          "checked, and its governance plugin fails to start (no governance config), so no virtual key, "
          "budget or rate limit applies. Its config schema is read from the workdir, never downloaded.",
)

PROFILES: list[GatewayProfile] = [PROFILE]


class BifrostLauncher(GoBinaryLauncher):
    """Runs ``bifrost-http`` from ``.gateways/bin`` with ``-app-dir`` in its private workdir."""

    name = NAME
    ready_timeout_s = 90.0
    binary, title, pinned, why_not_here = BINARY, "Bifrost", PINNED_VERSION, WHY_NOT_INSTALLABLE

    def available(self) -> str | None:
        reason = super().available()
        if reason is None and not (go_binary(SCHEMA_FILE)).is_file():
            # Without it Bifrost downloads its schema at every start (lib/validator.go): refuse instead.
            return (f"Bifrost: {go_binary(SCHEMA_FILE)} is missing (its source tree's transports/config.schema.json), "
                    f"so Bifrost would download its schema at start: register the binary again "
                    f"(scripts/register-built-gateway.sh bifrost BINARY SOURCE_DIR)")
        return reason

    async def start(self, ctx: LaunchContext) -> Launched:
        self.require_available()
        app_dir = ctx.workdir / "app"
        write_config(app_dir, ctx.channel_url)
        self.note_config(bifrost_config(ctx.channel_url))
        # Bifrost looks for the schema relative to its working directory, first as config.schema.json.
        shutil.copyfile(go_binary(SCHEMA_FILE), ctx.workdir / "config.schema.json")
        cmd = [str(go_binary(BINARY)), "-host", "127.0.0.1", "-port", str(ctx.port), "-app-dir", str(app_dir),
               "-log-level", "info", "-log-style", "json"]
        return await self.serve(cmd, ctx, ready_path="/health", env=bifrost_env(), cwd=ctx.workdir)


LAUNCHERS: list[type[Launcher]] = [BifrostLauncher]
