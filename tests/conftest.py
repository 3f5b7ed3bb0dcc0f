"""Shared fixtures: a real in-process mock on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gatewaylens.capture.launch import free_port
from gatewaylens.mock.server import MockServer
from tests.support.capture import Gateways

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


@pytest.fixture
def mock_port() -> int:
    """A free loopback port for a mock a test starts (or lets capture start)."""
    return free_port()


@pytest.fixture
def gws(mock_port: int, tmp_path: Path) -> Iterator[Gateways]:
    """Test gateways pointed at the mock on ``mock_port``, stopped after the test."""
    g = Gateways(mock_port, signal_dir=tmp_path)
    yield g
    g.stop()
