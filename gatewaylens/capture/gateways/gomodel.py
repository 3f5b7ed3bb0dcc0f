"""GoModel (ENTERPILOT/GoModel): an OpenAI-compatible Go gateway with provider passthrough routes.

What GoModel v0.1.22 serves (``internal/server/http.go``): ``/v1/chat/completions`` and
``/v1/responses`` in OpenAI shape for every provider, translated to the provider's API, plus
``/p/{provider}/{endpoint}`` passthrough that forwards the body untranslated (the ``v1/`` segment
is optional and normalised away).  It has no ``/v1/messages``: Anthropic-shaped clients reach an
Anthropic provider only through ``/p/anthropic/v1/messages``.

Models are chosen by ``provider/model`` (ADR-0005): the prefix picks the configured provider and
the rest is the raw upstream model name.  The generated config lists the mock's models per
provider in ``allowlist`` mode, so GoModel never calls the upstream ``/models`` (no stray records in
the channel) and never downloads its external model list (``model_list.url: ""``).

Quirks worth knowing when reading captures: GoModel listens on ``:PORT`` (every interface; it has
no host option, so the launcher protects it with a master key); by default it adds
``stream_options.include_usage`` to streaming chat requests (``ENFORCE_RETURNING_USAGE_DATA``)
and retries upstream 429, 502, 503 and 504, never 500, up to 3 times with backoff
(``internal/llmclient/client.go: isRetryable``), but never a passthrough POST
(``canRetryPassthrough``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gatewaylens.capture.gateways._go import GoBinaryLauncher, go_binary
from gatewaylens.capture.launch import LaunchContext, Launched, Launcher
from gatewaylens.capture.models import GatewayProfile, Route, Unsupported

NAME = "gomodel"
PINNED_VERSION = "v0.1.22"
#: Commit of tag v0.1.22 in ENTERPILOT/GoModel (the install script checks a source checkout against it).
PINNED_COMMIT = "a26fbd1cdef96c6aec71ce7e350ed7444bb4111c"
#: Docker Hub image (README: ``enterpilot/gomodel``); its release workflow tags images with
#: docker/metadata-action ``type=semver,pattern={{version}}``, i.e. without the ``v``.  Not pulled here.
IMAGE = "enterpilot/gomodel:0.1.22"

#: Obviously fake canaries: what the client sends to GoModel and what GoModel sends upstream.
CLIENT_KEY = "sk-gwlens-client-gomodel-0c1d2e3f"
UPSTREAM_OPENAI_KEY = "sk-gwlens-upstream-openai-gomodel-4a5b6c"
UPSTREAM_ANTHROPIC_KEY = "sk-ant-gwlens-upstream-gomodel-7d8e9f"

#: Models the generated config declares per provider (a subset of the mock's /v1/models).
OPENAI_MODELS = ["gpt-4o-mini", "gpt-4.1", "o4-mini", "gwl-mock-model"]
ANTHROPIC_MODELS = ["claude-3-5-haiku-latest", "claude-sonnet-4-5"]
OPENAI_MODEL = "openai/gpt-4o-mini"
ANTHROPIC_MODEL = "anthropic/claude-3-5-haiku-latest"

WHY_NOT_INSTALLABLE = ("cannot be installed here: its go.mod declares `module gomodel`, not "
                       "github.com/enterpilot/gomodel, so the Go module proxy cannot serve it to `go install`")


def gomodel_config(channel_url: str, port: int | str = 8080) -> dict[str, Any]:
    """GoModel's ``config.yaml`` pointing both providers at one mock channel.

    Secrets are not written: the file references ``${GWLENS_*}`` variables that GoModel expands
    from its environment (``config.go: expandString``).  Names other than GoModel's own
    auto-discovery variables (``OPENAI_API_KEY``...) so no provider is registered twice.
    """
    base = channel_url.rstrip("/") + "/v1"
    return {
        "server": {
            "port": str(port),
            "master_key": "${GWLENS_GOMODEL_MASTER_KEY}",
            "enable_passthrough_routes": True,
            "allow_passthrough_v1_alias": True,
            "enabled_passthrough_providers": ["openai", "anthropic"],
        },
        "models": {"configured_provider_models_mode": "allowlist"},
        # Offline: no external model-list download, no upstream /models polling.
        "cache": {"model": {"refresh_interval": 86400, "model_list": {"url": ""}, "local": {"cache_dir": ".cache"}}},
        "storage": {"type": "sqlite", "sqlite": {"path": "data/gomodel.db"}},
        "logging": {"enabled": False},
        "metrics": {"enabled": False},
        "providers": {
            "openai": {"type": "openai", "base_url": base, "api_key": "${GWLENS_UPSTREAM_OPENAI_KEY}",
                       "models": OPENAI_MODELS},
            "anthropic": {"type": "anthropic", "base_url": base, "api_key": "${GWLENS_UPSTREAM_ANTHROPIC_KEY}",
                          "models": ANTHROPIC_MODELS},
        },
    }


def gomodel_env() -> dict[str, str]:
    """The environment the generated config expects (fake canary keys only)."""
    return {
        "GWLENS_GOMODEL_MASTER_KEY": CLIENT_KEY,
        "GWLENS_UPSTREAM_OPENAI_KEY": UPSTREAM_OPENAI_KEY,
        "GWLENS_UPSTREAM_ANTHROPIC_KEY": UPSTREAM_ANTHROPIC_KEY,
    }


def write_config(workdir: Path, channel_url: str, port: int | str) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(gomodel_config(channel_url, port), sort_keys=False), encoding="utf-8")
    return path


PROFILE = GatewayProfile(
    name=NAME,
    title="GoModel",
    homepage="https://github.com/ENTERPILOT/GoModel",
    base_url="http://127.0.0.1:8080",
    routes=[
        Route(dialect="chat", upstream="openai", path="/v1/chat/completions", model=OPENAI_MODEL),
        Route(dialect="chat", upstream="anthropic", path="/v1/chat/completions", model=ANTHROPIC_MODEL),
        Route(dialect="responses", upstream="openai", path="/v1/responses", model=OPENAI_MODEL),
        Route(dialect="responses", upstream="anthropic", path="/v1/responses", model=ANTHROPIC_MODEL),
        # Passthrough: the body goes upstream untranslated, so the case's own model name is kept.
        Route(dialect="messages", upstream="anthropic", path="/p/anthropic/v1/messages", passthrough=True,
              variant="passthrough"),
        Route(dialect="chat", upstream="openai", path="/p/openai/v1/chat/completions", passthrough=True,
              variant="passthrough"),
        Route(dialect="responses", upstream="openai", path="/p/openai/v1/responses", passthrough=True,
              variant="passthrough"),
    ],
    unsupported=[
        Unsupported(dialect="messages", upstream="openai",
                    reason="GoModel has no /v1/messages endpoint; Anthropic-shaped requests only pass through "
                           "untranslated to an Anthropic provider (/p/anthropic/...)"),
    ],
    client_headers={"Authorization": f"Bearer {CLIENT_KEY}"},
    image=IMAGE,
    install="not installable from the Go module proxy (go.mod declares `module gomodel`); build it in your own "
            "checkout and register it: scripts/register-built-gateway.sh gomodel BINARY SOURCE_DIR",
    launcher=NAME,
    version=PINNED_VERSION,
    notes="Listens on all interfaces (no host option; protected by a master key). Streaming chat gains "
          "stream_options.include_usage by default. Translated calls: upstream 429/502/503/504 are retried up "
          "to 3 times with backoff from 1 s, a 500 is not retried (internal/llmclient/client.go isRetryable); "
          "passthrough POSTs are never retried (canRetryPassthrough). 5 failed translated requests in a row "
          "(5xx; 429 excluded) open the provider's circuit breaker: for 30 s requests to it are refused "
          "without an upstream call.",
)

PROFILES: list[GatewayProfile] = [PROFILE]


class GoModelLauncher(GoBinaryLauncher):
    """Runs the GoModel binary from ``.gateways/bin`` with a generated ``config.yaml`` in its workdir."""

    name = NAME
    ready_timeout_s = 60.0
    binary, title, pinned, why_not_here = NAME, "GoModel", PINNED_VERSION, WHY_NOT_INSTALLABLE

    async def start(self, ctx: LaunchContext) -> Launched:
        self.require_available()
        write_config(ctx.workdir, ctx.channel_url, ctx.port)
        self.note_config(gomodel_config(ctx.channel_url, ctx.port))
        env = {
            **gomodel_env(),
            # GoModel reads config.yaml and writes .cache/ and data/ relative to its cwd (the workdir).
            "GOMODEL_CACHE_DIR": str(ctx.workdir / ".cache"),
            "SQLITE_PATH": str(ctx.workdir / "data" / "gomodel.db"),
            "LOG_FORMAT": "json",
        }
        return await self.serve([str(go_binary(NAME))], ctx, ready_path="/health", env=env, cwd=ctx.workdir)


LAUNCHERS: list[type[Launcher]] = [GoModelLauncher]
