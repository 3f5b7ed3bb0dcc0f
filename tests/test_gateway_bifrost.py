"""Bifrost: the profile, its generated config, the installer's pins, and the real gateway on loopback.

The slow tests need ``.gateways/bin/bifrost-http`` (scripts/install-go-gateways.sh); on the
gatewaylens build machine the Go module proxy refuses github.com/maximhq/bifrost/*, so they skip.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatewaylens.capture.gateways import LAUNCHERS, PROFILES, _go, bifrost
from gatewaylens.capture.launch import PROJECT_ROOT
from gatewaylens.dialects import DIALECTS, UPSTREAMS
from gatewaylens.mock.server import MockServer
from tests.go_gateway_probe import assert_complete, launched, send

SCRIPT = PROJECT_ROOT / "scripts" / "install-go-gateways.sh"

# --- fast ------------------------------------------------------------------------------------


def test_profile_is_registered_and_valid() -> None:
    prof = PROFILES["bifrost"]
    # the registry key is the profile's own name (it becomes the mock channel), every route a path
    assert prof.name == "bifrost" and prof.routes and all(r.path.startswith("/") for r in prof.routes)
    assert prof.launcher in LAUNCHERS
    assert prof.image == f"maximhq/bifrost:{bifrost.PINNED_VERSION}"
    for d in DIALECTS:
        for u in UPSTREAMS:
            assert prof.route_for(d, u), (d, u)  # Bifrost routes every dialect to both providers
    # Model names are provider/model on every translated route.
    for r in prof.routes:
        if not r.passthrough:
            assert r.model and r.model.split("/", 1)[0] == r.upstream
    assert [r.path for r in prof.routes if r.passthrough] == ["/anthropic_passthrough/v1/messages"]


def test_installer_pins_match_profile() -> None:
    text = SCRIPT.read_text()
    assert re.search(rf'^BIFROST_VERSION="{re.escape(bifrost.PINNED_VERSION)}"$', text, re.M)
    assert 'BIFROST_MODULE="github.com/maximhq/bifrost/transports"' in text


def test_generated_config_is_offline_and_has_no_secrets(tmp_path: Path) -> None:
    path = bifrost.write_config(tmp_path / "app", "http://127.0.0.1:9999/ch/bifrost/")
    cfg = json.loads(path.read_text())
    for kind in ("openai", "anthropic"):
        prov = cfg["providers"][kind]
        # Bifrost appends /v1/... itself: the base URL is the bare channel.
        assert prov["network_config"]["base_url"] == "http://127.0.0.1:9999/ch/bifrost"
        assert prov["keys"][0]["value"].startswith("env.GWLENS_UPSTREAM_")
    assert cfg["config_store"] == {"enabled": False}
    assert cfg["framework"]["pricing"]["pricing_url"].startswith("http://127.0.0.1:")
    text = path.read_text()
    assert bifrost.UPSTREAM_OPENAI_KEY not in text and bifrost.UPSTREAM_ANTHROPIC_KEY not in text
    referenced = set(re.findall(r'"env\.(\w+)"', text))
    assert referenced == set(bifrost.bifrost_env())


def test_docker_config_is_the_generated_one() -> None:
    mounted = json.loads((PROJECT_ROOT / "docker" / "bifrost" / "config.json").read_text())
    assert mounted == bifrost.bifrost_config("http://mock:9999/ch/bifrost")


def test_unavailable_reason_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_go, "GO_BIN", tmp_path)
    reason = LAUNCHERS["bifrost"]().available()
    assert reason and "\n" not in reason and reason.startswith("Bifrost not installed: cannot be installed here")


# --- slow: the real Bifrost ------------------------------------------------------------------

_SKIP = LAUNCHERS["bifrost"]().available()
needs_bifrost = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")

#: Upstream path each (dialect, upstream) should reach.  Bifrost converts Anthropic Messages into
#: its Responses form, so a Messages client on an OpenAI model goes upstream as /v1/responses.
EXPECTED_PATH = {
    ("chat", "openai"): "/v1/chat/completions",
    ("chat", "anthropic"): "/v1/messages",
    ("responses", "openai"): "/v1/responses",
    ("responses", "anthropic"): "/v1/messages",
    ("messages", "openai"): "/v1/responses",
    ("messages", "anthropic"): "/v1/messages",
}


@pytest.mark.slow
@needs_bifrost
@pytest.mark.parametrize("stream", [False, True])
async def test_translated_routes(mock_server: MockServer, tmp_path: Path, stream: bool) -> None:
    prof = PROFILES["bifrost"]
    async with launched(LAUNCHERS["bifrost"](), mock_server, "bifrost", tmp_path) as gw, \
            httpx.AsyncClient(timeout=60, trust_env=False) as client:
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for route in (r for r in prof.routes if not r.passthrough):
            sent = await send(client, mock_server, gw, prof, route, stream)
            assert_complete(route.dialect, sent, stream)
            posts = [u for u in sent.upstream if u["method"] == "POST"]
            assert len(posts) == 1, sent.upstream
            assert posts[0]["path"] == EXPECTED_PATH[(route.dialect, route.upstream)]
            assert route.model and posts[0]["body_json"]["model"] == route.model.split("/", 1)[1]
            # The client's gateway key is not forwarded upstream.
            assert bifrost.CLIENT_KEY not in json.dumps(posts[0]["headers"])
            seen[(route.dialect, route.upstream)] = posts[0]["body_json"]
    assert seen[("responses", "anthropic")]["max_tokens"] == 66
    assert "max_output_tokens" not in seen[("responses", "anthropic")]


@pytest.mark.slow
@needs_bifrost
async def test_anthropic_passthrough_forwards_the_body(mock_server: MockServer, tmp_path: Path) -> None:
    prof = PROFILES["bifrost"]
    route = next(r for r in prof.routes if r.passthrough)
    async with launched(LAUNCHERS["bifrost"](), mock_server, "bifrost", tmp_path) as gw, \
            httpx.AsyncClient(timeout=60, trust_env=False) as client:
        sent = await send(client, mock_server, gw, prof, route, False)
        assert_complete("messages", sent, False)
        posts = [u for u in sent.upstream if u["method"] == "POST"]
        assert [p["path"] for p in posts] == ["/v1/messages"]
        assert json.loads(posts[0]["body_text"]) == json.loads(sent.body_sent)
