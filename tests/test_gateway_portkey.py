"""Portkey gateway: the profile, the npm pins, and the real gateway on loopback against the mock."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatewaylens.capture.gateways import LAUNCHERS, PROFILES, _npm, portkey
from gatewaylens.capture.launch import NPM_DIR, PROJECT_ROOT
from gatewaylens.dialects import DIALECT_PATHS, DIALECTS, UPSTREAMS, redaction_marker
from gatewaylens.mock.server import MockServer
from tests.gateway_checks import listening_addresses, resolve_route
from tests.go_gateway_probe import assert_complete, launched, send

# --- fast ------------------------------------------------------------------------------------


def test_profile_is_registered_and_valid() -> None:
    prof = PROFILES["portkey"]
    # the registry key is the profile's own name (it becomes the mock channel), every route a path
    assert prof.name == "portkey" and prof.routes and all(r.path.startswith("/") for r in prof.routes)
    assert prof.launcher in LAUNCHERS and LAUNCHERS[prof.launcher] is portkey.PortkeyLauncher
    # Every pair reaches the gateway: the ones it cannot translate are findings, not "unsupported".
    for d in DIALECTS:
        for u in UPSTREAMS:
            (route,) = prof.route_for(d, u)
            assert route.path == DIALECT_PATHS[d]
            assert route.headers["x-portkey-provider"] == u
            assert route.headers["x-portkey-custom-host"] == "{channel_url}/v1"
            assert route.headers["authorization"] == f"Bearer {portkey.UPSTREAM_KEYS[u]}"
            assert prof.unsupported_reason(d, u) is None
    assert all(k.startswith("sk-gwlens-upstream-") for k in portkey.UPSTREAM_KEYS.values())
    assert prof.image == f"portkeyai/gateway:{portkey.VERSION}"


def test_npm_pins_and_hono_override() -> None:
    pkg = json.loads((NPM_DIR / "package.json").read_text())
    lock = json.loads((NPM_DIR / "package-lock.json").read_text())["packages"]
    assert pkg["dependencies"]["@portkey-ai/gateway"] == portkey.VERSION
    assert lock["node_modules/@portkey-ai/gateway"]["version"] == portkey.VERSION
    # Streaming answers 500 (TypeError: immutable) with newer @hono/node-server.
    assert pkg["overrides"]["@hono/node-server"] == "1.13.8"
    assert lock["node_modules/@hono/node-server"]["version"] == "1.13.8"


def test_available_is_none_or_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    reason = portkey.PortkeyLauncher().available()
    assert reason is None or (isinstance(reason, str) and "\n" not in reason)
    monkeypatch.setattr(_npm, "NPM_DIR", tmp_path)
    monkeypatch.setattr(_npm, "package_dir", lambda p: tmp_path / "node_modules" / p)
    reason = portkey.PortkeyLauncher().available()
    assert reason is not None and "\n" not in reason
    assert reason.startswith("Portkey gateway not installed: run scripts/install-npm-gateways.sh") or "Node.js" in reason


# --- slow: the real Portkey ------------------------------------------------------------------

_SKIP = portkey.PortkeyLauncher().available()
needs_portkey = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")

#: What Portkey 1.15.2 calls upstream for each pair it translates (path, max-tokens field).
EXPECTED: dict[tuple[str, str], tuple[str, str, int]] = {
    ("chat", "openai"): ("/v1/chat/completions", "max_tokens", 77),
    ("chat", "anthropic"): ("/v1/messages", "max_tokens", 77),
    ("responses", "openai"): ("/v1/responses", "max_output_tokens", 66),
    ("messages", "anthropic"): ("/v1/messages", "max_tokens", 55),
}


@pytest.mark.slow
@needs_portkey
async def test_real_portkey_routes(mock_server: MockServer, tmp_path: Path) -> None:
    prof = PROFILES["portkey"]
    channel = f"{mock_server.url}/ch/portkey"
    async with launched(portkey.PortkeyLauncher(), mock_server, "portkey", tmp_path) as gw, \
            httpx.AsyncClient(timeout=60, trust_env=False) as client:
        assert gw.version == portkey.VERSION
        # Bound to loopback only, although Portkey itself asks for all interfaces.
        assert listening_addresses(int(gw.base_url.rsplit(":", 1)[1])) == {"127.0.0.1"}
        seen: dict[tuple[str, str, bool], dict[str, Any]] = {}
        for route in prof.routes:
            route = resolve_route(route, channel, mock_server.url)
            for stream in (False, True):
                sent = await send(client, mock_server, gw, prof, route, stream)
                key = (route.dialect, route.upstream)
                if key not in EXPECTED:
                    # Reaches the gateway, which cannot translate it: 500 and no upstream call.
                    assert sent.status == 500, sent.text[:200]
                    assert "is not supported by" in sent.json()["message"]
                    assert sent.upstream == []
                    continue
                # Streams too: the @hono/node-server override is what makes these 200.
                assert_complete(route.dialect, sent, stream)
                assert len(sent.upstream) == 1
                up = sent.upstream[0]
                path, field, value = EXPECTED[key]
                assert up["path"] == path
                assert up["body_json"][field] == value
                assert up["body_json"]["model"] == portkey.MODELS[route.upstream]
                assert up["body_json"].get("stream") is stream
                if route.upstream == "anthropic":
                    assert up["headers"]["x-api-key"] == redaction_marker(portkey.UPSTREAM_KEYS["anthropic"])
                    assert up["headers"]["anthropic-version"] == "2023-06-01"
                else:
                    assert up["headers"]["authorization"] == f"Bearer {redaction_marker(portkey.UPSTREAM_KEYS['openai'])}"
                seen[(*key, stream)] = up["body_json"]

    # Chat -> Anthropic: the system message becomes a top-level system block list.
    chat_anth = seen[("chat", "anthropic", False)]
    assert chat_anth["system"] == [{"text": "gwl-system-chat", "type": "text"}]
    assert [m["role"] for m in chat_anth["messages"]] == ["user"]
    # Native pairs keep the client's own field names.
    assert seen[("responses", "openai", True)]["instructions"] == "gwl-system-responses"
    assert seen[("messages", "anthropic", True)]["system"] == "gwl-system-messages"


def test_npm_installer_is_idempotent_when_installed() -> None:
    script = PROJECT_ROOT / "scripts" / "install-npm-gateways.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    if portkey.PortkeyLauncher().available() is not None:
        pytest.skip("npm gateways not installed: idempotency needs an install")
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"portkey {portkey.VERSION}: already installed in {NPM_DIR}/node_modules",
        f"claude-code-router {_npm.pinned_version('@musistudio/claude-code-router')}: already installed in {NPM_DIR}/node_modules",
    ]
