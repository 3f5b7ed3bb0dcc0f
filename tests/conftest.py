"""Shared fixtures: a real in-process mock on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gatewaylens.mock.server import MockServer

#: Canary secrets: tests send them and assert they never reach any output.
CANARIES = [
    "sk-canary-0123456789abcdefXYZ",
    "sk-ant-canary-api03-QWERTYUIOP",
    "canary-plain-token-77aa88bb",
    "canary-cookie-value-5150",
]


@pytest.fixture
async def mock_server(tmp_path: Path) -> AsyncIterator[MockServer]:
    server = MockServer("127.0.0.1", 0, record_file=tmp_path / "mock-records.jsonl")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
