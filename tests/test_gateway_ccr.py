"""claude-code-router: the profile, its generated config, and the real router on loopback against the mock."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatewaylens.capture.gateways import LAUNCHERS, PROFILES, _npm
from gatewaylens.capture.gateways import claude_code_router as ccr
from gatewaylens.capture.launch import NPM_DIR, PROJECT_ROOT
from gatewaylens.dialects import UPSTREAMS, redaction_marker
from gatewaylens.mock.server import MockServer
from tests.gateway_checks import listening_addresses
from tests.go_gateway_probe import BODIES, Sent, channel_records, launched, send

# --- fast ------------------------------------------------------------------------------------


def test_profile_is_registered_and_valid() -> None:
    prof = PROFILES["claude-code-router"]
    # the registry key is the profile's own name (it becomes the mock channel), every route a path
    assert prof.name == "claude-code-router" and prof.routes and all(r.path.startswith("/") for r in prof.routes)
    assert LAUNCHERS[prof.launcher or ""] is ccr.ClaudeCodeRouterLauncher
    assert {(r.dialect, r.upstream, r.variant) for r in prof.routes} == {
        ("messages", "openai", ""), ("messages", "openai", "responses"), ("messages", "anthropic", "")}
    for d in ("chat", "responses"):
        for u in UPSTREAMS:
            assert "only for /v1/messages" in (prof.unsupported_reason(d, u) or "")
    # Every model name selects a configured provider and one of its models.
    providers = {p["name"]: p for p in ccr.make_config("http://x/ch/c")["Providers"]}
    for r in prof.routes:
        assert r.model
        provider, model = r.model.split(",")
        assert model in providers[provider]["models"]
        assert r.model == r.model.lower()  # CCR lower-cases only one side of its comparison
    assert prof.client_headers == {"x-api-key": ccr.CLIENT_KEY}
    assert ccr.CLIENT_KEY.startswith("sk-gwlens-client-")


def test_generated_config_points_at_channel_without_secrets() -> None:
    cfg = ccr.make_config("http://127.0.0.1:9999/ch/claude-code-router", 4567)
    assert (cfg["HOST"], cfg["PORT"]) == ("127.0.0.1", 4567)
    urls = {p["name"]: p["api_base_url"] for p in cfg["Providers"]}
    assert urls == {
        "mock-openai": "http://127.0.0.1:9999/ch/claude-code-router/v1/chat/completions",
        "mock-anthropic": "http://127.0.0.1:9999/ch/claude-code-router/v1/messages",
        "mock-openai-responses": "http://127.0.0.1:9999/ch/claude-code-router/v1/responses",
    }
    text = json.dumps(cfg)
    for secret in (ccr.CLIENT_KEY, ccr.OPENAI_KEY, ccr.ANTHROPIC_KEY):
        assert secret not in text
    assert set(re.findall(r"\$\{(\w+)\}", text)) == {"GWLENS_CCR_APIKEY", "GWLENS_OPENAI_KEY", "GWLENS_ANTHROPIC_KEY"}


def test_docker_config_is_the_generated_one() -> None:
    mounted = json.loads((PROJECT_ROOT / "docker" / "claude-code-router" / "config.json").read_text())
    assert mounted == ccr.make_config("http://mock:9999/ch/claude-code-router", 3456, "0.0.0.0")
    dockerfile = (PROJECT_ROOT / "docker" / "claude-code-router" / "Dockerfile").read_text()
    assert f"@musistudio/claude-code-router@{ccr.VERSION}" in dockerfile


def test_npm_pin() -> None:
    pkg = json.loads((NPM_DIR / "package.json").read_text())
    lock = json.loads((NPM_DIR / "package-lock.json").read_text())["packages"]
    assert pkg["dependencies"][ccr.PACKAGE] == ccr.VERSION
    assert lock[f"node_modules/{ccr.PACKAGE}"]["version"] == ccr.VERSION


def test_available_is_none_or_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    reason = ccr.ClaudeCodeRouterLauncher().available()
    assert reason is None or (isinstance(reason, str) and "\n" not in reason)
    monkeypatch.setattr(_npm, "node_major", lambda: 18)
    assert ccr.ClaudeCodeRouterLauncher().available() == "claude-code-router needs Node.js >= 20, found v18"
    monkeypatch.setattr(_npm, "node_major", lambda: 20)
    monkeypatch.setattr(_npm, "package_dir", lambda p: tmp_path / p)
    assert ccr.ClaudeCodeRouterLauncher().available() == (
        "claude-code-router not installed: run scripts/install-npm-gateways.sh")


# --- slow: the real claude-code-router -------------------------------------------------------


def messages_answer(sent: Sent, stream: bool) -> tuple[list[str], str, dict[str, Any]]:
    """(content block types, full text, final usage) of an Anthropic Messages answer, checked complete."""
    assert sent.status == 200, sent.text[:300]
    if not stream:
        body = sent.json()
        assert body["type"] == "message" and body["stop_reason"] == "end_turn", body
        text = "".join(b["text"] for b in body["content"] if b["type"] == "text")
        return [b["type"] for b in body["content"]], text, body["usage"]
    frames = [d for _, d in sent.frames() if isinstance(d, dict)]
    types = [d["type"] for d in frames]
    assert types[0] == "message_start" and types[-1] == "message_stop", types
    blocks = [d["content_block"]["type"] for d in frames if d["type"] == "content_block_start"]
    text = "".join(d["delta"].get("text", "") for d in frames if d["type"] == "content_block_delta")
    (delta,) = [d for d in frames if d["type"] == "message_delta"]
    assert delta["delta"]["stop_reason"] == "end_turn"
    return blocks, text, delta["usage"]


def upstream_text(up: dict[str, Any]) -> str:
    """The reply text the mock sent upstream, whatever its dialect."""
    ans = up["response"]
    if ans["frames"]:
        out = []
        for f in ans["frames"]:
            d = json.loads(f["data"]) if f["data"].startswith("{") else {}
            if d.get("choices"):
                out.append(d["choices"][0]["delta"].get("content") or "")
            elif d.get("type") == "response.output_text.delta" or d.get("type") == "content_block_delta":
                out.append(d.get("delta") if isinstance(d.get("delta"), str) else d["delta"].get("text", ""))
        return "".join(out)
    body = ans["body"]
    if "choices" in body:
        return str(body["choices"][0]["message"]["content"])
    if body.get("object") == "response":
        return "".join(c["text"] for o in body["output"] if o["type"] == "message" for c in o["content"])
    return "".join(b["text"] for b in body["content"] if b["type"] == "text")

_SKIP = ccr.ClaudeCodeRouterLauncher().available()
needs_ccr = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")


@pytest.mark.slow
@needs_ccr
async def test_real_ccr_routes(mock_server: MockServer, tmp_path: Path) -> None:
    prof = PROFILES["claude-code-router"]
    async with launched(ccr.ClaudeCodeRouterLauncher(), mock_server, "claude-code-router", tmp_path) as gw, \
            httpx.AsyncClient(timeout=60, trust_env=False) as client:
        assert gw.version == ccr.VERSION
        port = int(gw.base_url.rsplit(":", 1)[1])
        assert listening_addresses(port) == {"127.0.0.1"}
        # Config and state live in the temp HOME; the config on disk holds no key.
        conf = tmp_path / "home" / ".claude-code-router" / "config.json"
        assert json.loads(conf.read_text())["PORT"] == port
        assert ccr.OPENAI_KEY not in conf.read_text()

        seen: dict[tuple[str, bool], dict[str, Any]] = {}
        for route in prof.routes:
            for stream in (False, True):
                sent = await send(client, mock_server, gw, prof, route, stream)
                assert len(sent.upstream) == 1, sent.upstream
                up = sent.upstream[0]
                blocks, text, usage = messages_answer(sent, stream)
                # The whole reply arrives, whatever the upstream dialect.
                assert text and text == upstream_text(up)
                up["client"] = (blocks, usage)
                body = up["body_json"]
                # "provider,model": the provider prefix picks the provider and is stripped.
                assert body["model"] == (route.model or "").split(",")[1]
                assert body.get("stream") is stream
                if route.upstream == "anthropic":
                    assert up["headers"]["x-api-key"] == redaction_marker(ccr.ANTHROPIC_KEY)
                else:
                    assert up["headers"]["authorization"] == f"Bearer {redaction_marker(ccr.OPENAI_KEY)}"
                seen[(route.variant or route.upstream, stream)] = up

        # Messages -> OpenAI Chat Completions: system becomes the first message, max_tokens kept.
        for stream in (False, True):
            up = seen[("openai", stream)]
            assert up["path"] == "/v1/chat/completions"
            assert up["body_json"]["messages"][0] == {"role": "system", "content": "gwl-system-messages"}
            assert up["body_json"]["max_tokens"] == BODIES["messages"]["max_tokens"]
        assert seen[("openai", False)]["response"]["body"]["choices"][0]["message"]["annotations"] == []
        # Findings on the way back from OpenAI: an upstream "annotations": [] turns into a phantom
        # web_search server_tool_use + empty result before the text, and streams lose the usage.
        for variant in ("openai", "responses"):
            blocks, usage = seen[(variant, False)]["client"]
            assert blocks == ["server_tool_use", "web_search_tool_result", "text"]
            assert usage["output_tokens"] > 0
            blocks, usage = seen[(variant, True)]["client"]
            assert blocks == ["text"] and usage["output_tokens"] == 0
        # Messages -> OpenAI Responses (openai-responses transformer): the token limit is dropped,
        # neither max_tokens nor max_output_tokens goes upstream.
        for stream in (False, True):
            up = seen[("responses", stream)]
            assert up["path"] == "/v1/responses"
            assert up["body_json"]["instructions"] == "gwl-system-messages"
            assert "max_tokens" not in up["body_json"] and "max_output_tokens" not in up["body_json"]
        # Messages -> Anthropic: forwarded as Messages, same fields.
        up = seen[("anthropic", False)]
        assert up["path"] == "/v1/messages"
        assert up["body_json"]["max_tokens"] == 55 and up["body_json"]["system"] == "gwl-system-messages"
        assert seen[("anthropic", False)]["client"][0] == ["text"]

        # Gateway auth: without the client key nothing goes upstream.
        seq = int((await client.get(f"{mock_server.url}/__mock/health")).json()["last_seq"])
        r = await client.post(f"{gw.base_url}/v1/messages", json={**BODIES["messages"], "model": prof.routes[0].model})
        assert r.status_code == 401
        # Chat Completions is served but never routed to a provider: 404, no upstream call.
        r = await client.post(f"{gw.base_url}/v1/chat/completions", headers=prof.client_headers,
                              json={**BODIES["chat"], "model": prof.routes[0].model})
        assert r.status_code == 404 and "Provider 'undefined' not found" in r.text
        assert await channel_records(client, mock_server, "claude-code-router", seq) == []
