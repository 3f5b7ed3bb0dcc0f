"""LiteLLM proxy (PyPI ``litellm[proxy]``), in its own venv at ``.gateways/litellm``.

Two profiles, because users run both behaviours:

- ``litellm``: default routing.  An Anthropic ``/v1/messages`` request for an OpenAI model goes
  upstream as OpenAI Responses (``/v1/responses``).
- ``litellm-chat``: the same config started with
  ``LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES=True``, which sends those requests
  upstream as Chat Completions instead.

The generated config maps two client model names onto the mock channel: ``gwlens-openai``
(``openai/gpt-4.1-mini``) and ``gwlens-anthropic`` (``anthropic/claude-sonnet-4-20250514``).
The provider pass-through endpoints (``/openai/...``, ``/openai_passthrough/...``,
``/anthropic/...``) are pointed at the channel through ``OPENAI_API_BASE`` / ``ANTHROPIC_API_BASE``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import yaml

from gatewaylens.capture.launch import TOOLS_DIR, LaunchContext, Launched, Launcher, LaunchError
from gatewaylens.capture.models import GatewayProfile, Route
from gatewaylens.datafiles import install_hint
from gatewaylens.dialects import DIALECT_PATHS, DIALECTS, UpstreamKind

VERSION = "1.106.12"
VENV = TOOLS_DIR / "litellm"
DEFAULT_PORT = 4000
INSTALL_HINT = install_hint("install-litellm.sh", "litellm")

#: Canary credentials: the gateway's master key (what clients send) and fake provider keys.
MASTER_KEY = "sk-gwlens-client-litellm-7e3a90"
UPSTREAM_KEYS: dict[UpstreamKind, str] = {
    "openai": "sk-gwlens-upstream-openai-litellm-2b8d",
    "anthropic": "sk-gwlens-upstream-anthropic-litellm-c4f1",
}
#: Client model name -> upstream model, per upstream kind.
CLIENT_MODELS: dict[UpstreamKind, str] = {"openai": "gwlens-openai", "anthropic": "gwlens-anthropic"}
UPSTREAM_MODELS: dict[UpstreamKind, str] = {"openai": "gpt-4.1-mini", "anthropic": "claude-sonnet-4-20250514"}
#: Cases tagged ``reasoning`` need an OpenAI model that can reason: LiteLLM checks its bundled model
#: map before calling and rejects reasoning_effort/thinking for gpt-4.1-mini (no supports_reasoning,
#: litellm/model_prices_and_context_window_backup.json:34829 @1.106.12), while o4-mini has
#: "supports_reasoning": true (same file, l. 44565).  Without this, 10 rejections per run are ours.
REASONING_CLIENT_MODEL = "gwlens-openai-reasoning"
REASONING_UPSTREAM_MODEL = "o4-mini"


def make_config(channel_url: str) -> dict[str, Any]:
    """LiteLLM's config.yaml, pointed at ``channel_url``."""
    return {
        "model_list": [
            {
                "model_name": CLIENT_MODELS["openai"],
                "litellm_params": {
                    "model": f"openai/{UPSTREAM_MODELS['openai']}",
                    "api_base": f"{channel_url}/v1",
                    "api_key": "os.environ/GWLENS_OPENAI_KEY",
                },
            },
            {
                "model_name": REASONING_CLIENT_MODEL,
                "litellm_params": {
                    "model": f"openai/{REASONING_UPSTREAM_MODEL}",
                    "api_base": f"{channel_url}/v1",
                    "api_key": "os.environ/GWLENS_OPENAI_KEY",
                },
            },
            {
                "model_name": CLIENT_MODELS["anthropic"],
                "litellm_params": {
                    "model": f"anthropic/{UPSTREAM_MODELS['anthropic']}",
                    # LiteLLM appends /v1/messages to an Anthropic api_base.
                    "api_base": channel_url,
                    "api_key": "os.environ/GWLENS_ANTHROPIC_KEY",
                },
            },
        ],
        # One upstream call per client request, so an exchange shows what the gateway did, not
        # its retry policy; the scripted-error cases then see exactly one 429/500 upstream.
        "litellm_settings": {"num_retries": 0, "request_timeout": 120, "telemetry": False},
        "router_settings": {"num_retries": 0},
        "general_settings": {
            "master_key": "os.environ/LITELLM_MASTER_KEY",
            # Otherwise LiteLLM GETs <api_base>/v1/models of every OpenAI deployment at start and
            # every 300 s: calls no client made, which would land in the channel mid-capture.
            "disable_model_info_refresh": True,
        },
    }


def _routes(chat_profile: bool) -> list[Route]:
    routes = [
        Route(dialect=d, upstream=u, path=DIALECT_PATHS[d], model=CLIENT_MODELS[u],
              tag_models={"reasoning": REASONING_CLIENT_MODEL} if u == "openai" else {})
        for d in DIALECTS for u in ("openai", "anthropic")
    ]
    if chat_profile:
        # The pass-through endpoints ignore the routing switch: capturing them once is enough.
        return routes
    return [
        *routes,
        # Provider pass-through: the body goes to the provider unchanged (only the key is swapped).
        Route(dialect="chat", upstream="openai", path="/openai/v1/chat/completions", passthrough=True,
              variant="passthrough"),
        Route(dialect="responses", upstream="openai", path="/openai_passthrough/v1/responses", passthrough=True,
              variant="passthrough"),
        Route(dialect="messages", upstream="anthropic", path="/anthropic/v1/messages", passthrough=True,
              variant="passthrough"),
    ]


def _profile(name: str, chat_profile: bool) -> GatewayProfile:
    routing = (
        "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES=True: /v1/messages for an OpenAI model "
        "goes upstream as /v1/chat/completions."
        if chat_profile
        else "Default routing: /v1/messages for an OpenAI model goes upstream as /v1/responses."
    )
    return GatewayProfile(
        name=name,
        family="litellm",
        title="LiteLLM proxy" + (" (chat-completions routing for Messages)" if chat_profile else ""),
        homepage="https://github.com/BerriAI/litellm",
        # docker-compose.yml publishes litellm on 4000 and litellm-chat on 4001.
        base_url=f"http://127.0.0.1:{DEFAULT_PORT + (1 if chat_profile else 0)}",
        routes=_routes(chat_profile),
        unsupported=[],
        client_headers={"authorization": f"Bearer {MASTER_KEY}"},
        # The generated model_list (make_config): each client model name is an alias on purpose.
        model_aliases={CLIENT_MODELS["openai"]: UPSTREAM_MODELS["openai"],
                       REASONING_CLIENT_MODEL: REASONING_UPSTREAM_MODEL,
                       CLIENT_MODELS["anthropic"]: UPSTREAM_MODELS["anthropic"]},
        image=f"ghcr.io/berriai/litellm:v{VERSION}",
        install="scripts/install-litellm.sh",
        launcher=name,
        version=VERSION,
        notes=(
            f"{routing} Models: gwlens-openai -> openai/{UPSTREAM_MODELS['openai']}, gwlens-anthropic -> "
            f"anthropic/{UPSTREAM_MODELS['anthropic']}. Pass-through routes /openai, /openai_passthrough and "
            "/anthropic forward the body as is. Retries off."
        ),
    )


def _installed_version() -> str | None:
    """Read the version from the venv's dist-info name (no slow ``import litellm``)."""
    for p in sorted(VENV.glob("lib/python*/site-packages/litellm-*.dist-info")):
        m = re.match(r"litellm-(\d[^-]*)\.dist-info$", p.name)
        if m:
            return m.group(1)
    return None


class LiteLLMLauncher(Launcher):
    """``litellm --config <workdir>/config.yaml --host 127.0.0.1 --port N`` from its own venv."""

    name: ClassVar[str] = "litellm"
    ready_timeout_s: ClassVar[float] = 90.0
    #: Extra environment for this profile's routing behaviour.
    routing_env: ClassVar[dict[str, str]] = {}

    @staticmethod
    def executable() -> Path:
        return VENV / "bin" / "litellm"

    def available(self) -> str | None:
        if not self.executable().exists():
            return f"LiteLLM not installed: {INSTALL_HINT}"
        installed = _installed_version()
        if installed != VERSION:
            return f"LiteLLM {installed} installed but {VERSION} is pinned: {INSTALL_HINT}"
        return None

    def version(self) -> str | None:
        return _installed_version()

    async def start(self, ctx: LaunchContext) -> Launched:
        reason = self.available()
        if reason:
            raise LaunchError(reason)
        config = ctx.workdir / "litellm-config.yaml"
        # The config names only environment variables, so no key is ever written to disk.
        data = make_config(ctx.channel_url)
        self.note_config(data)
        config.write_text(yaml.safe_dump(data, sort_keys=False))
        env = {
            "LITELLM_MASTER_KEY": MASTER_KEY,
            "GWLENS_OPENAI_KEY": UPSTREAM_KEYS["openai"],
            "GWLENS_ANTHROPIC_KEY": UPSTREAM_KEYS["anthropic"],
            # Pass-through endpoints take their base and key from the environment.
            "OPENAI_API_BASE": ctx.channel_url,
            "OPENAI_API_KEY": UPSTREAM_KEYS["openai"],
            "ANTHROPIC_API_BASE": ctx.channel_url,
            "ANTHROPIC_API_KEY": UPSTREAM_KEYS["anthropic"],
            # Offline: use the bundled model cost map instead of downloading it at start.
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "LITELLM_LOG": "INFO",
            "DISABLE_SCHEMA_UPDATE": "True",
            "PYTHONUNBUFFERED": "1",
            **self.routing_env,
        }
        cmd = [str(self.executable()), "--config", str(config), "--host", "127.0.0.1", "--port", str(ctx.port),
               "--num_workers", "1"]
        self.spawn(cmd, ctx, env=env)
        base = f"http://127.0.0.1:{ctx.port}"
        await self.wait_ready(f"{base}/health/liveliness")
        return Launched(base_url=base, version=self.version(), log_path=self.log_path)


class LiteLLMChatLauncher(LiteLLMLauncher):
    """Same proxy, with Messages-to-OpenAI requests routed to Chat Completions."""

    name: ClassVar[str] = "litellm-chat"
    routing_env: ClassVar[dict[str, str]] = {"LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "True"}


PROFILES: list[GatewayProfile] = [_profile("litellm", False), _profile("litellm-chat", True)]
LAUNCHERS: list[type[Launcher]] = [LiteLLMLauncher, LiteLLMChatLauncher]
