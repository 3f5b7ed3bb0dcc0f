"""Helpers for tests that talk to the mock: the official SDKs pointed at one channel, and the
channel log read with the control token.  Shared here so that no test module imports another."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai

from gatewaylens.mock.server import MockServer
from tests.conftest import CANARIES

__all__ = ["an", "log", "oa"]


def oa(server: MockServer, channel: str = "sdk") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/ch/{channel}/v1", api_key=CANARIES[0], max_retries=0)


def an(server: MockServer, channel: str = "sdk") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=f"{server.url}/ch/{channel}", api_key=CANARIES[1], max_retries=0)


async def log(server: MockServer, channel: str | None = None, since: int = 0) -> dict[str, Any]:
    params: dict[str, Any] = {"since": since}
    if channel:
        params["channel"] = channel
    async with httpx.AsyncClient(headers=server.control_headers) as c:
        r = await c.get(f"{server.url}/__mock/log", params=params)
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data
