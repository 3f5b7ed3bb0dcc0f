"""Runnable gateways launched once on a mock channel: their req/s through the mock vs the mock's own."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bench.models import Figure, at_least, info
from bench.procs import load
from gatewaylens.capture import gateways as registry
from gatewaylens.capture.models import Case, GatewayInfo, GatewayProfile, Route
from gatewaylens.capture.runner import (
    GatewayTarget,
    channel_url,
    client_headers,
    expand,
    join_url,
    launch_one,
    stop_one,
)
from gatewaylens.dialects import Dialect, UpstreamKind

#: Dialect/upstream combinations tried in this order to find one request each gateway serves.
PREFERENCE: list[tuple[Dialect, UpstreamKind]] = [("chat", "openai"), ("messages", "anthropic"),
                                                   ("chat", "anthropic"), ("messages", "openai"),
                                                   ("responses", "openai")]
MODELS: dict[Dialect, str] = {"chat": "gpt-4o-mini", "messages": "claude-3-5-haiku-latest", "responses": "gpt-4.1-mini"}


def bench_case(dialect: Dialect) -> Case:
    body: dict[str, Any] = {"model": MODELS[dialect], "max_tokens": 32}
    if dialect == "responses":
        body = {"model": MODELS[dialect], "input": "bench: say hi", "max_output_tokens": 32}
    else:
        body["messages"] = [{"role": "user", "content": "bench: say hi"}]
    return Case(id=f"bench-{dialect}", dialect=dialect, stream=False, body=body, note="bench")


@dataclass
class Launched:
    targets: list[GatewayTarget] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def profiles(self) -> list[GatewayProfile]:
        """The profiles, addressed at where each gateway was launched."""
        return [t.profile.model_copy(update={"base_url": t.base_url}) for t in self.targets]


async def launch_all(mock_url: str, names: list[str] | None, say: Any) -> Launched:
    out = Launched()
    targets = []
    for name, p in sorted(registry.PROFILES.items()):
        if names is not None and name not in names:
            continue
        ch = channel_url(mock_url, name)
        targets.append(GatewayTarget(profile=p, base_url=p.base_url, channel_url=ch,
                                     info=GatewayInfo(name=name, base_url=p.base_url, channel_url=ch), custom=False))
    # One at a time: launches are CPU-heavy (LiteLLM imports for seconds) and readiness is bounded.
    for t in targets:
        await launch_one(t, mock_url, say)
        if t.info.skipped:
            out.skipped.append(f"{t.name}: {t.info.skipped}")
            say(f"gateway {t.name}: skipped: {t.info.skipped}")
        else:
            out.targets.append(t)
    return out


async def stop_all(launched: Launched) -> None:
    await asyncio.gather(*(stop_one(t) for t in launched.targets), return_exceptions=True)


def request_for(t: GatewayTarget, mock_url: str) -> tuple[str, dict[str, Any], dict[str, str], str] | None:
    for dialect, up in PREFERENCE:
        if t.profile.unsupported_reason(dialect, up):
            continue
        routes = t.profile.route_for(dialect, up)
        if not routes:
            continue
        route: Route = routes[0]
        case = bench_case(dialect)
        body = dict(case.body)
        if route.model is not None:
            body["model"] = route.model
        url = join_url(t.base_url, expand(route.path, t.channel_url, mock_url))
        return url, body, client_headers(case, t.profile, route, t.channel_url, mock_url), f"{dialect}->{up}"
    return None


def run(launched: Launched, mock_url: str, *, duration: float, concurrency: int, say: Any) -> tuple[list[Figure], list[str]]:
    figures: list[Figure] = []
    skipped: list[str] = []
    from bench.mockbench import CHAT_BODY

    mock = load(mock_url + "/ch/bench-direct/v1/chat/completions", CHAT_BODY, concurrency=concurrency, duration=duration)
    mock_rps = float(mock["rps"])
    say(f"mock (recording, same process the gateways use): {mock_rps:.0f} req/s")
    figures.append(info("mock req/s (recording on, comparison base)", mock_rps, "req/s",
                        f"chat non-stream, {concurrency} connections, {duration:g}s"))
    best: tuple[str, float] | None = None
    for t in launched.targets:
        req = request_for(t, mock_url)
        if req is None:
            skipped.append(f"gateway {t.name} req/s: no non-stream route to measure")
            continue
        url, body, headers, how = req
        headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
        res = load(url, body, headers=headers, concurrency=concurrency, duration=duration, warmup=1.0)
        if res["requests"] == 0 or res["errors"] > res["requests"] // 2:
            skipped.append(f"gateway {t.name} req/s: {res['errors']}/{res['requests']} errors "
                           f"(statuses {res['statuses']}, {res['first_error'] or ''})")
            say(f"gateway {t.name}: skipped, mostly errors: {res['statuses']}")
            continue
        rps = float(res["rps"])
        say(f"gateway {t.name} ({how}): {rps:.0f} req/s")
        figures.append(info(f"gateway {t.name} req/s / mock req/s", rps / mock_rps if mock_rps else 0.0, "ratio",
                            f"{rps:.0f} req/s through the mock ({how}), {res['errors']} errors"))
        if best is None or rps > best[1]:
            best = (t.name, rps)
    if best is not None:
        figures.append(at_least("mock req/s / fastest gateway req/s", mock_rps / best[1], "x", 3.0,
                                f"fastest: {best[0]} {best[1]:.0f} req/s"))
    else:
        skipped.append("mock vs fastest gateway: no gateway could be measured")
    return figures, skipped
