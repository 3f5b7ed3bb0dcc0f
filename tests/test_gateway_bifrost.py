"""Bifrost: the profile, its generated config, the installer's pins, and the real gateway on loopback.

The slow tests need ``.gateways/bin/bifrost-http``: installed by scripts/install-go-gateways.sh where
the Go module proxy serves Bifrost, or a binary built in your own checkout and registered with
scripts/register-built-gateway.sh.  On the gatewaylens build machine the proxy refuses
github.com/maximhq/bifrost/*, so without a registered binary they skip.  Expectations come from
transports v1.4.14 (commit c0b31066), the version they were last run against.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatewaylens.capture.corpus import default_corpus_paths, load_corpus
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
    assert "scripts/register-built-gateway.sh bifrost BINARY SOURCE_DIR" in reason
    # Installed at the pin but without its schema file: Bifrost would download the schema, so no.
    (tmp_path / "bifrost-http").write_text("#!/bin/sh\n")
    (tmp_path / "bifrost-http.version").write_text(bifrost.PINNED_VERSION + "\n")
    reason = LAUNCHERS["bifrost"]().available()
    assert reason and "bifrost-http.schema.json is missing" in reason
    (tmp_path / "bifrost-http.schema.json").write_text("{}")
    assert LAUNCHERS["bifrost"]().available() is None


def test_keys_serve_every_model_the_corpus_names() -> None:
    # A key serves only the models it lists ("no keys found that support model"); passthrough cases
    # keep their own model name, so each one the shipped corpus uses must be listed.
    prev = Path.cwd()
    os.chdir(PROJECT_ROOT)
    try:
        corpus = load_corpus(default_corpus_paths()).corpus
    finally:
        os.chdir(prev)
    named = {c.body["model"] for c in corpus.cases if isinstance(c.body.get("model"), str)}
    listed = set(bifrost.OPENAI_MODELS) | set(bifrost.ANTHROPIC_MODELS)
    assert named and named <= listed, sorted(named - listed)
    assert bifrost.bifrost_config("http://x")["$schema"] == bifrost.SCHEMA_ID


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


#: Bifrost transports v1.4.14 (commit c0b31066), core/providers/anthropic/responses.go
#: ``AnthropicMessageResponse.ToBifrostResponsesResponse`` fills id, created_at, usage, output, model
#: and stop_reason only: a non-streaming Responses answer from an Anthropic model comes back with
#: ``"object": ""`` and no ``status``.
KNOWN_GAPS: dict[tuple[str, str, bool], frozenset[str]] = {
    ("responses", "anthropic", False): frozenset({"object", "status"}),
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
            assert_complete(route.dialect, sent, stream, KNOWN_GAPS.get((route.dialect, route.upstream, stream),
                                                                        frozenset()))
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
        # Observed with transports v1.4.14: the body comes back as sent upstream, but with fasthttp's
        # default content type instead of the upstream's (integrations/router.go handlePassthrough*
        # copies the upstream headers; Content-Type does not survive), streamed or not.
        assert posts[0]["response"]["headers"]["content-type"].startswith("application/json")
        assert sent.headers["content-type"] == "text/plain; charset=utf-8"
        streamed = await send(client, mock_server, gw, prof, route, True)
        assert streamed.status == 200 and "event: message_stop" in streamed.text
        assert streamed.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.slow
@needs_bifrost
async def test_start_is_offline_and_the_client_key_is_not_checked(mock_server: MockServer, tmp_path: Path) -> None:
    prof = PROFILES["bifrost"]
    route = next(r for r in prof.routes if r.dialect == "chat" and r.upstream == "openai")
    launcher = LAUNCHERS["bifrost"]()
    async with launched(launcher, mock_server, "bifrost", tmp_path) as gw, \
            httpx.AsyncClient(timeout=60, trust_env=False) as client:
        # The schema is read from the workdir (lib/validator.go localSchemaCandidates[0]).
        assert (tmp_path / "config.schema.json").read_bytes() == _go.go_binary(bifrost.SCHEMA_FILE).read_bytes()
        # File mode: no config store, so server/server.go skips the auth middleware; a wrong key works.
        stranger = prof.model_copy(update={"client_headers": {"Authorization": "Bearer sk-not-the-bifrost-key"}})
        sent = await send(client, mock_server, gw, stranger, route, False)
        assert_complete("chat", sent, False)
        bare = prof.model_copy(update={"client_headers": {}})
        assert_complete("chat", await send(client, mock_server, gw, bare, route, False), False)
        assert gw.log_path is not None
        log = gw.log_path.read_text(errors="replace")
    assert "skipping auth middleware" in log
    # plugins/governance/store.go: no governance section in the config, so the plugin does not start.
    assert "failed to initialize governance plugin" in log and "governance config is nil" in log
    # Neither the schema download (lib/validator.go) nor the missing-$schema warning (lib/config.go).
    assert "failed to get config schema" not in log and "failed to download config schema" not in log
    assert 'does not include "$schema"' not in log


@pytest.mark.slow
@needs_bifrost
async def test_passthrough_serves_the_corpus_models_and_does_not_retry(mock_server: MockServer, tmp_path: Path) -> None:
    prof = PROFILES["bifrost"]
    route = next(r for r in prof.routes if r.passthrough)
    body = {"max_tokens": 20, "messages": [{"role": "user", "content": "gwl hello"}]}
    async with launched(LAUNCHERS["bifrost"](), mock_server, "bifrost", tmp_path) as gw, \
            httpx.AsyncClient(timeout=60, trust_env=False) as client:
        for model in ("claude-3-7-sonnet-latest", "claude-opus-4-5"):
            sent = await send(client, mock_server, gw, prof, route, False, {**body, "model": model})
            assert_complete("messages", sent, False)
        # network_config.max_retries 0: a 503 upstream is one call.
        translated = next(r for r in prof.routes if r.dialect == "chat" and r.upstream == "anthropic")
        r = await client.post(f"{mock_server.url}/__mock/script", params={"channel": "bifrost"}, headers=mock_server.control_headers,
                              json={"steps": [{"status": 503}], "mode": "replace"})
        r.raise_for_status()
        sent = await send(client, mock_server, gw, prof, translated, False)
        assert [u["response"]["status"] for u in sent.upstream if u["method"] == "POST"] == [503]
        assert sent.status >= 500, sent.text[:200]
