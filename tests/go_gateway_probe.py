"""Helpers for the real Go gateway tests (GoModel, Bifrost): launch, send, read the mock channel."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gatewaylens.capture.launch import LaunchContext, Launched, Launcher, free_port
from gatewaylens.capture.models import GatewayProfile, Route
from gatewaylens.dialects import iter_sse_text, parse_json
from gatewaylens.mock.server import MockServer

#: One small request per dialect, with values distinctive enough to follow through a gateway.
BODIES: dict[str, dict[str, Any]] = {
    "chat": {"model": "gpt-4o-mini", "max_tokens": 77, "temperature": 0.25,
             "messages": [{"role": "system", "content": "gwl-system-chat"}, {"role": "user", "content": "gwl hello"}]},
    "responses": {"model": "gpt-4o-mini", "input": "gwl hello", "instructions": "gwl-system-responses",
                  "max_output_tokens": 66},
    "messages": {"model": "claude-3-5-haiku-latest", "max_tokens": 55, "system": "gwl-system-messages",
                 "messages": [{"role": "user", "content": "gwl hello"}]},
}


@dataclass
class Sent:
    status: int
    text: str
    body_sent: bytes
    upstream: list[dict[str, Any]]
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return parse_json(self.text)

    def frames(self) -> list[tuple[str | None, Any]]:
        return [(ev, parse_json(data) if data != "[DONE]" else "[DONE]") for ev, data in iter_sse_text(self.text)]


@asynccontextmanager
async def launched(launcher: Launcher, mock: MockServer, channel: str, workdir: Path) -> AsyncIterator[Launched]:
    ctx = LaunchContext(channel_url=f"{mock.url}/ch/{channel}", mock_url=mock.url, port=free_port(), workdir=workdir)
    try:
        yield await launcher.start(ctx)
    finally:
        await launcher.stop()


async def channel_records(client: httpx.AsyncClient, mock: MockServer, channel: str, since: int = 0) -> list[dict[str, Any]]:
    r = await client.get(f"{mock.url}/__mock/log", params={"channel": channel, "since": since},
                         headers=mock.control_headers)
    r.raise_for_status()
    records: list[dict[str, Any]] = r.json()["records"]
    return records


async def send(client: httpx.AsyncClient, mock: MockServer, gw: Launched, profile: GatewayProfile, route: Route,
               stream: bool, body: dict[str, Any] | None = None) -> Sent:
    """Send one request on ``route`` and return the client answer plus every upstream record it caused."""
    payload = dict(body if body is not None else BODIES[route.dialect])
    payload["stream"] = stream
    if route.model:
        payload["model"] = route.model
    raw = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"content-type": "application/json", **profile.client_headers, **route.headers}
    if route.dialect == "messages":
        headers["anthropic-version"] = "2023-06-01"
    seq = int((await client.get(f"{mock.url}/__mock/health")).json()["last_seq"])
    resp = await client.post(gw.base_url + route.path, content=raw, headers=headers)
    return Sent(resp.status_code, resp.text, raw, await channel_records(client, mock, profile.name, seq),
                {k.lower(): v for k, v in resp.headers.items()})


_DONE = re.compile(r"^(message_stop|response\.completed)$")


#: Top-level fields a non-streaming Responses answer must carry, with the value the API gives them.
RESPONSES_REQUIRED = {"object": "response", "status": "completed"}


def assert_complete(dialect: str, sent: Sent, stream: bool, known_gaps: frozenset[str] = frozenset()) -> None:
    """The client got a whole answer in its own dialect (not merely a 200).

    ``known_gaps`` names top-level Responses fields (``object``, ``status``) that the gateway is known
    to leave out or get wrong on this route; each must really be a gap, so the test fails (and
    says so) the day the gateway fixes it.  Any other missing field fails with the body shown.
    """
    assert sent.status == 200, sent.text[:300]
    if not stream:
        body = sent.json()
        assert isinstance(body, dict), sent.text[:300]
        if dialect == "chat":
            assert (body.get("choices") or [{}])[0].get("message", {}).get("content"), body
        elif dialect == "responses":
            assert body.get("output"), body
            gaps = {k for k, want in RESPONSES_REQUIRED.items() if body.get(k) != want}
            assert gaps == set(known_gaps), (f"Responses answer: fields missing or wrong {sorted(gaps)}, "
                                             f"known gaps {sorted(known_gaps)}: "
                                             f"{ {k: body.get(k, '<absent>') for k in RESPONSES_REQUIRED} }")
        else:
            assert body.get("type") == "message" and (body.get("content") or [{}])[0].get("text"), body
        return
    frames = sent.frames()
    assert frames, sent.text[:300]
    if dialect == "chat":
        assert frames[-1][1] == "[DONE]", frames[-3:]
        assert any(isinstance(d, dict) and d.get("choices") and d["choices"][0].get("finish_reason") for _, d in frames)
    else:
        types = [(ev or (d.get("type") if isinstance(d, dict) else None)) for ev, d in frames]
        assert any(t and _DONE.match(t) for t in types), types
