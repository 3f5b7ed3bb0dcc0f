"""claude-code-router (npm ``@musistudio/claude-code-router``).

It reads ``$HOME/.claude-code-router/config.json`` (and writes its pid file and logs under
``$HOME``), so the launcher gives it a HOME inside the run's temp workdir and writes the config
there.  A request picks its provider with a ``provider,model`` model name; three providers point
at the mock channel:

- ``mock-openai``: OpenAI Chat Completions upstream (the default, no transformer),
- ``mock-anthropic``: Anthropic Messages upstream through its ``Anthropic`` transformer,
- ``mock-openai-responses``: OpenAI Responses upstream through its ``openai-responses`` transformer.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from gatewaylens.capture.gateways import _npm
from gatewaylens.capture.launch import LaunchContext, Launched, Launcher
from gatewaylens.capture.models import GatewayProfile, Route, Unsupported
from gatewaylens.dialects import DIALECT_PATHS

PACKAGE = "@musistudio/claude-code-router"
ENTRY = "dist/cli.js"
VERSION = "2.0.0"
DEFAULT_PORT = 3456
#: 2.0.0 declares node >= 20 (3.x needs node >= 22, which Debian's nodejs does not provide).
MIN_NODE = 20

#: Gateway auth the client sends (CCR's APIKEY, accepted as x-api-key or Bearer) and the fake
#: upstream keys in the generated config: canaries the redaction tests look for.
CLIENT_KEY = "sk-gwlens-client-ccr-3d7b41"
OPENAI_KEY = "sk-gwlens-upstream-openai-ccr-8c20"
ANTHROPIC_KEY = "sk-gwlens-upstream-anthropic-ccr-61fa"

OPENAI_MODEL = "gpt-4.1-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-20250514"
# CCR compares provider and model names lower-cased on one side only: keep them lower-case.
P_OPENAI, P_ANTHROPIC, P_RESPONSES = "mock-openai", "mock-anthropic", "mock-openai-responses"


def make_config(channel_url: str, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> dict[str, Any]:
    """The config.json CCR reads, pointed at ``channel_url`` (``docker/claude-code-router/config.json``
    is this with the compose mock URL and host 0.0.0.0)."""
    return {
        "HOST": host,
        "PORT": port,
        # Keys are ${VAR} references CCR interpolates from its environment: none reaches disk.
        "APIKEY": "${GWLENS_CCR_APIKEY}",
        "LOG": True,
        "LOG_LEVEL": "info",
        "API_TIMEOUT_MS": 120000,
        "Providers": [
            {
                "name": P_OPENAI,
                "api_base_url": f"{channel_url}/v1/chat/completions",
                "api_key": "${GWLENS_OPENAI_KEY}",
                "models": [OPENAI_MODEL],
            },
            {
                "name": P_ANTHROPIC,
                "api_base_url": f"{channel_url}/v1/messages",
                "api_key": "${GWLENS_ANTHROPIC_KEY}",
                "models": [ANTHROPIC_MODEL],
                "transformer": {"use": ["Anthropic"]},
            },
            {
                "name": P_RESPONSES,
                "api_base_url": f"{channel_url}/v1/responses",
                "api_key": "${GWLENS_OPENAI_KEY}",
                "models": [OPENAI_MODEL],
                "transformer": {"use": ["openai-responses"]},
            },
        ],
        # Only used for model names without a provider prefix; every route names its provider.
        "Router": {"default": f"{P_OPENAI},{OPENAI_MODEL}"},
    }


PROFILE = GatewayProfile(
    name="claude-code-router",
    title="claude-code-router",
    homepage="https://github.com/musistudio/claude-code-router",
    base_url=f"http://127.0.0.1:{DEFAULT_PORT}",
    routes=[
        Route(dialect="messages", upstream="openai", path="/v1/messages", model=f"{P_OPENAI},{OPENAI_MODEL}"),
        Route(dialect="messages", upstream="openai", path="/v1/messages", model=f"{P_RESPONSES},{OPENAI_MODEL}",
              variant="responses"),
        Route(dialect="messages", upstream="anthropic", path="/v1/messages", model=f"{P_ANTHROPIC},{ANTHROPIC_MODEL}"),
    ],
    unsupported=[
        Unsupported(dialect=d, upstream=u, reason=(
            f"claude-code-router picks a provider only for /v1/messages; {DIALECT_PATHS[d]} answers 404 "
            "'Provider undefined not found' without calling upstream"))
        for d in ("chat", "responses") for u in ("openai", "anthropic")
    ],
    client_headers={"x-api-key": CLIENT_KEY},
    # A `provider,model` name routes to that provider and sends `model` upstream (its config above).
    model_aliases={f"{p},{m}": m for p, m in ((P_OPENAI, OPENAI_MODEL), (P_RESPONSES, OPENAI_MODEL),
                                               (P_ANTHROPIC, ANTHROPIC_MODEL))},
    image="gatewaylens/claude-code-router:2.0.0",  # no official image: built from docker/claude-code-router/
    install="scripts/install-npm-gateways.sh",
    launcher="claude-code-router",
    version=VERSION,
    notes=(
        "Config in $HOME/.claude-code-router/config.json (HOME is a temp dir); provider chosen by a "
        "'provider,model' model name; APIKEY set so it only accepts the client key; no official image."
    ),
)


class ClaudeCodeRouterLauncher(_npm.NpmLauncher):
    """``ccr start`` in the foreground with ``HOME`` in the workdir."""

    name: ClassVar[str] = "claude-code-router"
    ready_timeout_s: ClassVar[float] = 30.0
    title, package, entry, min_node = "claude-code-router", PACKAGE, ENTRY, MIN_NODE

    async def start(self, ctx: LaunchContext) -> Launched:
        self.require_available()
        conf_dir = ctx.workdir / "home" / ".claude-code-router"
        conf_dir.mkdir(parents=True, exist_ok=True)
        conf = conf_dir / "config.json"
        config = make_config(ctx.channel_url, ctx.port)
        self.note_config(config)
        conf.write_text(json.dumps(config, indent=2))
        conf.chmod(0o600)
        env = {
            "GWLENS_CCR_APIKEY": CLIENT_KEY,
            "GWLENS_OPENAI_KEY": OPENAI_KEY,
            "GWLENS_ANTHROPIC_KEY": ANTHROPIC_KEY,
            # SERVICE_PORT would override PORT from the config; make sure an inherited one cannot.
            "SERVICE_PORT": str(ctx.port),
        }
        return await self.serve(_npm.node_command(PACKAGE, ENTRY, "start"), ctx, ready_path="/health", env=env)


PROFILES: list[GatewayProfile] = [PROFILE]
LAUNCHERS: list[type[Launcher]] = [ClaudeCodeRouterLauncher]
