"""Example conftest for a gateway's own repository: gatewaylens' pytest plugin is loaded by
installing gatewaylens (``pip install gatewaylens``); this file only starts YOUR gateway, with its
upstream pointed at the test's own channel of gatewaylens' recording mock.

Replace ``GATEWAY_CMD`` (or the whole fixture) with however your gateway starts.  Here it is a
command template from the environment, with ``{port}`` (where the gateway must listen) and
``{upstream}`` (the upstream base URL it must call: ``gatewaylens_mock.channel_url``), e.g.::

    GATEWAY_CMD='mygateway serve --port {port} --openai-base-url {upstream}' pytest tests/gatewaylens
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from gatewaylens.pytest_plugin import MockChannel


@dataclass
class Gateway:
    url: str
    proc: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def my_gateway(gatewaylens_mock: MockChannel) -> Iterator[Gateway]:
    template = os.environ.get("GATEWAY_CMD")
    if not template:
        pytest.skip("set GATEWAY_CMD to the command that starts your gateway ({port}, {upstream})")
    port = _free_port()
    cmd = shlex.split(template.format(port=port, upstream=gatewaylens_mock.channel_url))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:  # ready when it answers anything on its port
        try:
            httpx.get(url + os.environ.get("GATEWAY_HEALTH", "/health"), timeout=1, trust_env=False)
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the gateway did not start: {cmd}")
            time.sleep(0.1)
    yield Gateway(url=url, proc=proc)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
