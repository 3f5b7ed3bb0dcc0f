"""gatewaylens as a pytest plugin (entry point ``pytest11: gatewaylens``): a gateway's own tests
send corpus cases through the gateway, with gatewaylens' recording mock as its upstream, and
assert how it translated.

    def test_tools(gatewaylens_mock, gatewaylens_capture, assert_translation, my_gateway):
        # my_gateway: your fixture, a gateway started with upstream base URL gatewaylens_mock.channel_url
        exchanges = gatewaylens_capture.sync(my_gateway.url, cases=["tools-chat-required"])
        assert_translation(exchanges, no_errors=True, fixture=True)

    async def test_tools_async(gatewaylens_capture, assert_translation, my_gateway):   # pytest-asyncio / anyio
        exchanges = await gatewaylens_capture(my_gateway.url, cases=["tools-chat-required"])
        assert_translation(exchanges, no_errors=True)

Fixtures:

``gatewaylens_mock_server`` (session)
    the recording mock, running in a background thread for the whole session (works in sync and
    async tests alike); on ``--gatewaylens-mock-port`` or a free loopback port.
``gatewaylens_mock`` (function)
    this test's own channel on that mock: ``url``, ``channel``, ``channel_url`` (the upstream base
    URL to configure the gateway with), ``records()`` (what reached the upstream on it).
``gatewaylens_capture`` (function)
    ``await gatewaylens_capture(gateway, cases=[...])`` or ``gatewaylens_capture.sync(...)``:
    ``gateway`` is its URL or a :class:`~gatewaylens.GatewayProfile`; cases for routes the gateway
    lacks (the other upstream kind) are left out; the exchanges come back labelled with the gateway name (``gateway=``, the marker, ini ``gatewaylens_gateway``, default
    ``gateway``), so fixtures do not depend on the per-test channel.
``assert_translation`` (function)
    :func:`gatewaylens.assert_translation` bound to the session's settings: ``fixture=True`` is the
    fixtures directory, a relative ``fixture`` is inside it, ``--gatewaylens-update`` writes instead
    of comparing, the known-gaps file applies.
``gatewaylens_settings`` (session)
    the resolved options.

Marker ``@pytest.mark.gatewaylens(gateway=..., cases=[...], upstream=..., corpus=..., headers={...})``
gives ``gatewaylens_capture`` defaults for one test (or a module, via ``pytestmark``).

Options (command line, or ini keys with ``_`` for ``-``): ``--gatewaylens-fixtures DIR``
(default ``tests/gatewaylens/fixtures`` under the rootdir), ``--gatewaylens-known-gaps FILE``,
``--gatewaylens-corpus PATH`` (default: the shipped corpus), ``--gatewaylens-gateway NAME``,
``--gatewaylens-upstream openai|anthropic``, ``--gatewaylens-mock-port PORT``,
``--gatewaylens-update``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatewaylens import __version__
from gatewaylens.api import MockServer, capture
from gatewaylens.assertions import assert_translation as _assert_translation
from gatewaylens.capture.models import Corpus, Exchange, GatewayProfile
from gatewaylens.capture.selection import custom_profile
from gatewaylens.dialects import UpstreamKind
from gatewaylens.mock.models import RecordedExchange

DEFAULT_FIXTURES = "tests/gatewaylens/fixtures"
DEFAULT_GATEWAY = "gateway"
_OPTIONS: dict[str, str] = {  # option -> help (ini key: the same with "_")
    "gatewaylens-fixtures": f"fixtures directory (default {DEFAULT_FIXTURES} under the rootdir)",
    "gatewaylens-known-gaps": "known-gaps file: accepted behaviours do not fail assert_translation",
    "gatewaylens-corpus": "corpus file or directory for gatewaylens_capture (default: the shipped corpus)",
    "gatewaylens-gateway": f"gateway name the exchanges and fixtures carry (default {DEFAULT_GATEWAY})",
    "gatewaylens-upstream": "upstream kind the gateway is configured for: openai (default) or anthropic",
    "gatewaylens-mock-port": "port of the session's mock (default: a free loopback port)",
}
_updated = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gatewaylens", "gatewaylens: translation tests against the recording mock")
    for name, help_ in _OPTIONS.items():
        metavar = {"gatewaylens-fixtures": "DIR", "gatewaylens-known-gaps": "FILE", "gatewaylens-corpus": "PATH",
                   "gatewaylens-gateway": "NAME", "gatewaylens-upstream": "KIND", "gatewaylens-mock-port": "PORT"}[name]
        group.addoption(f"--{name}", dest=name.replace("-", "_"), metavar=metavar, default=None, help=help_)
        parser.addini(name.replace("-", "_"), help_, default=None)
    group.addoption("--gatewaylens-update", dest="gatewaylens_update", action="store_true", default=False,
                    help="write the fixtures assert_translation compares with, instead of comparing")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gatewaylens(gateway=None, cases=None, upstream=None, corpus=None, headers=None): "
                   "defaults for the gatewaylens_capture fixture in this test")
    config.stash[_updated] = []


@dataclass(frozen=True)
class Settings:
    """The plugin's options, resolved (command line over ini over defaults; paths from the rootdir)."""

    fixtures: Path
    known_gaps: Path | None
    corpus: Path | None
    gateway: str
    upstream: UpstreamKind
    mock_port: int
    update: bool


def _value(config: pytest.Config, name: str) -> str | None:
    key = name.replace("-", "_")
    cli = config.getoption(key, default=None)
    if cli is not None:
        return str(cli)
    ini = config.getini(key)
    return str(ini) if ini else None


def _settings(config: pytest.Config) -> Settings:
    root = Path(config.rootpath)

    def path(name: str) -> Path | None:
        v = _value(config, name)
        return None if v is None else (root / v if not Path(v).is_absolute() else Path(v))

    upstream = _value(config, "gatewaylens-upstream") or "openai"
    if upstream not in ("openai", "anthropic"):
        raise pytest.UsageError(f"--gatewaylens-upstream: expected openai or anthropic, got {upstream!r}")
    port_text = _value(config, "gatewaylens-mock-port") or "0"
    if not port_text.isdigit() or int(port_text) > 65535:
        raise pytest.UsageError(f"--gatewaylens-mock-port: expected a port number, got {port_text!r}")
    return Settings(fixtures=path("gatewaylens-fixtures") or root / DEFAULT_FIXTURES,
                    known_gaps=path("gatewaylens-known-gaps"), corpus=path("gatewaylens-corpus"),
                    gateway=_value(config, "gatewaylens-gateway") or DEFAULT_GATEWAY,
                    upstream="anthropic" if upstream == "anthropic" else "openai", mock_port=int(port_text),
                    update=bool(config.getoption("gatewaylens_update")))


def pytest_report_header(config: pytest.Config) -> str:
    s = _settings(config)
    return (f"gatewaylens {__version__}: fixtures {s.fixtures}" + (" (update)" if s.update else "")
            + (f", known gaps {s.known_gaps}" if s.known_gaps else ""))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    written: list[str] = config.stash.get(_updated, [])
    tests = sorted(set(written))
    if tests:
        terminalreporter.write_line(f"gatewaylens: fixtures written by {len(tests)} test(s) (--gatewaylens-update)")


# --- the mock, in a thread -----------------------------------------------------------------------


class ThreadedMock:
    """The recording mock on its own event loop in a daemon thread, for a whole session."""

    def __init__(self, port: int = 0) -> None:
        self.server = MockServer(port=port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="gatewaylens-mock", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as e:  # reported by start() in the test's thread
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.server.stop())
        self._loop.close()

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> ThreadedMock:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"gatewaylens: the mock could not start on port {self.server.port}: {self._error}")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)


_CHANNEL_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def channel_for(nodeid: str) -> str:
    """A mock channel name of one test: readable, unique (a digest of the node id), ≤ 64 characters."""
    digest = hashlib.sha256(nodeid.encode()).hexdigest()[:10]
    name = _CHANNEL_CHARS.sub("-", nodeid.rsplit("::", 1)[-1]).strip("-.")[:40] or "test"
    return f"t-{name}-{digest}"


@dataclass
class MockChannel:
    """One test's channel on the session's mock."""

    url: str
    channel: str
    #: the control token header of the session's mock (reading a channel's log needs it)
    control_headers: dict[str, str] = field(default_factory=dict)

    @property
    def channel_url(self) -> str:
        """The upstream base URL to configure the gateway with (``/v1/...`` paths go after it)."""
        return f"{self.url}/ch/{self.channel}"

    def records(self) -> list[RecordedExchange]:
        """Every request that reached the mock on this channel, oldest first (credentials redacted)."""
        r = httpx.get(f"{self.url}/__mock/log", params={"channel": self.channel, "since": "0"}, timeout=30,
                      trust_env=False, headers=self.control_headers)
        r.raise_for_status()
        return [RecordedExchange.model_validate(x) for x in r.json()["records"]]


@dataclass
class Capturer:
    """``await capturer(gateway, cases=[...])`` / ``capturer.sync(...)``: corpus cases through a
    gateway whose upstream is this test's channel; returns the exchanges."""

    mock: MockChannel
    settings: Settings
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def _profile(self, gateway: str | GatewayProfile, upstream: UpstreamKind,
                 headers: Mapping[str, str] | None) -> GatewayProfile:
        """The gateway as a profile named after this test's channel (capture's channel is the name)."""
        if isinstance(gateway, GatewayProfile):
            prof = gateway.model_copy(update={"name": self.mock.channel, "family": gateway.family or gateway.name})
        else:
            prof = custom_profile(self.mock.channel, gateway.rstrip("/"), upstream)
        if headers:
            prof = prof.model_copy(update={"client_headers": {**prof.client_headers, **headers}})
        return prof

    async def __call__(self, gateway: str | GatewayProfile, *, cases: Sequence[str] | None = None,
                       gateway_name: str | None = None, upstream: UpstreamKind | None = None,
                       corpus: Corpus | str | Path | None = None, headers: Mapping[str, str] | None = None,
                       request_timeout: float = 60.0, out: str | Path | None = None) -> list[Exchange]:
        d = self.defaults
        kind: UpstreamKind = upstream or d.get("upstream") or self.settings.upstream
        prof = self._profile(gateway, kind, headers if headers is not None else d.get("headers"))
        own_name = gateway.name if isinstance(gateway, GatewayProfile) else None
        name = gateway_name or d.get("gateway") or own_name or self.settings.gateway
        use_corpus = corpus if corpus is not None else d.get("corpus") or self.settings.corpus
        want = cases if cases is not None else d.get("cases")
        exchanges = await capture([prof], mock_url=self.mock.url, corpus=use_corpus,
                                  cases=[want] if isinstance(want, str) else want, out=out,
                                  request_timeout=request_timeout)
        # a route the gateway does not have (a case for the other upstream kind) is not an exchange
        return [_relabel(ex, self.mock.channel, name) for ex in exchanges if ex.status != "unsupported"]

    def sync(self, gateway: str | GatewayProfile, **kw: Any) -> list[Exchange]:
        """The same, from a synchronous test."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self(gateway, **kw))
        raise RuntimeError("gatewaylens_capture.sync() inside a running event loop: use `await gatewaylens_capture(...)`")


def _relabel(ex: Exchange, channel: str, name: str) -> Exchange:
    """The exchange under the gateway's own name instead of the per-test channel's."""
    rest = ex.id[len(channel):] if ex.id.startswith(channel) else "/" + ex.id
    return ex.model_copy(update={"gateway": name, "id": name + rest})


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gatewaylens_settings(pytestconfig: pytest.Config) -> Settings:
    return _settings(pytestconfig)


@pytest.fixture(scope="session")
def gatewaylens_mock_server(gatewaylens_settings: Settings) -> Iterator[ThreadedMock]:
    mock = ThreadedMock(gatewaylens_settings.mock_port).start()
    try:
        yield mock
    finally:
        mock.stop()


@pytest.fixture
def gatewaylens_mock(gatewaylens_mock_server: ThreadedMock, request: pytest.FixtureRequest) -> MockChannel:
    return MockChannel(url=gatewaylens_mock_server.url, channel=channel_for(request.node.nodeid),
                       control_headers=dict(gatewaylens_mock_server.server.control_headers))


@pytest.fixture
def gatewaylens_capture(gatewaylens_mock: MockChannel, gatewaylens_settings: Settings,
                        request: pytest.FixtureRequest) -> Capturer:
    defaults: dict[str, Any] = {}
    for mark in reversed(list(request.node.iter_markers("gatewaylens"))):  # closest marker wins
        defaults.update(mark.kwargs)
    return Capturer(mock=gatewaylens_mock, settings=gatewaylens_settings, defaults=defaults)


@pytest.fixture
def assert_translation(gatewaylens_settings: Settings, request: pytest.FixtureRequest) -> Callable[..., None]:
    s = gatewaylens_settings

    def bound(exchanges: Sequence[Exchange], *, fixture: bool | str | Path | None = None, **kw: Any) -> None:
        __tracebackhide__ = True
        target: Path | None
        if fixture is True:
            target = s.fixtures
        elif fixture is None or fixture is False:
            target = None
        else:
            target = Path(fixture) if Path(fixture).is_absolute() else s.fixtures / fixture
        kw.setdefault("known_gaps", s.known_gaps)
        kw.setdefault("update", s.update)
        _assert_translation(exchanges, fixture=target, **kw)
        if target is not None and kw["update"]:
            request.config.stash[_updated].append(request.node.nodeid)

    bound.__doc__ = _assert_translation.__doc__
    return bound
