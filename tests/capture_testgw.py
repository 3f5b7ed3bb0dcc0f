"""A tiny, independent test gateway for capture's tests (aiohttp, loopback only).

It accepts the three dialect paths and forwards each request to the same path on its upstream
(its mock channel) with known rewrites: ``model`` becomes ``<name>-<model>`` and an
``x-testgw: <name>`` header is added.  The client header ``x-testgw-mode`` picks a behaviour:

``normal``  forward once; ``retry``: forward again when the upstream answered >= 500;
``double``: always two upstream calls; ``hang``: never answer; ``die``: exit the process at once;
``die-mid-stream``: relay the first upstream chunk of a stream, then exit; ``garbage``: answer 200
with bytes that are not JSON; ``garbage-after``: the same after calling the upstream; ``echo``: add the client's Authorization value to the JSON answer
(a gateway leaking a key); ``slow``: touch ``<signal-dir>/slow-<name>`` then wait
``x-testgw-sleep`` seconds before forwarding; ``triple``: three upstream calls, ``model`` rewritten
to ``call<i>-<model>``, the last answer relayed; ``echo-all``: add every client header and the
raw query to the JSON answer.

With ``--forward-all`` (the fault suite's pass-through gateway) every client header except
hop-by-hop ones, and the query string, are forwarded, so credentials reach the mock.

Run: python tests/capture_testgw.py --name NAME --port PORT --upstream URL [--signal-dir DIR] [--forward-all]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

import aiohttp
from aiohttp import web

PATHS = ("/v1/chat/completions", "/v1/responses", "/v1/messages")


HOP = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding", "x-testgw-mode"}


def make_app(name: str, upstream: str, signal_dir: Path | None, forward_all: bool = False) -> web.Application:
    session: dict[str, aiohttp.ClientSession] = {}

    async def on_startup(app: web.Application) -> None:
        session["s"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))

    async def on_cleanup(app: web.Application) -> None:
        await session["s"].close()

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "name": name})

    async def handle(request: web.Request) -> web.StreamResponse:
        mode = request.headers.get("x-testgw-mode", "normal")
        body = await request.json()
        body["model"] = f"{name}-{body.get('model')}"
        fwd = {"content-type": "application/json", "x-testgw": name}
        if forward_all:
            fwd.update({k: v for k, v in request.headers.items() if k.lower() not in HOP})
        for h in ("authorization", "x-api-key", "anthropic-version"):
            if h in request.headers:
                fwd[h] = request.headers[h]
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode == "die":
            os._exit(3)
        if mode == "garbage":
            return web.Response(status=200, body=b"\xff\xfe<<not json at all>>", content_type="application/octet-stream")
        if mode == "slow":
            if signal_dir is not None:
                (signal_dir / f"slow-{name}").touch()
            await asyncio.sleep(float(request.headers.get("x-testgw-sleep", "1")))
        url = upstream.rstrip("/") + request.path
        if forward_all and request.query_string:
            url += f"?{request.query_string}"
        calls = {"double": 2, "triple": 3}.get(mode, 1)
        model = body["model"]
        for attempt in range(3):
            if mode == "triple":
                body["model"] = f"call{attempt + 1}-{model}"
            data = json.dumps(body).encode()
            up = await session["s"].post(url, data=data, headers=fwd)
            if body.get("stream") and up.status < 300 and attempt + 1 >= calls and mode != "garbage-after":
                resp = web.StreamResponse(status=up.status, headers={"content-type": up.headers.get("content-type", "")})
                await resp.prepare(request)
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                    if mode == "die-mid-stream":
                        os._exit(4)
                await resp.write_eof()
                up.release()
                return resp
            raw = await up.read()
            up.release()
            retry = (mode == "retry" and up.status >= 500) or attempt + 1 < calls
            if not retry:
                break
        if mode == "garbage-after":
            return web.Response(status=200, body=b"\xff\xfe<<not json at all>>", content_type="application/octet-stream")
        answer = json.loads(raw) if raw else {}
        if mode == "echo" and isinstance(answer, dict):
            answer["echo_auth"] = request.headers.get("authorization")
        if mode == "echo-all" and isinstance(answer, dict):
            answer["echo"] = {"headers": dict(request.headers), "query": request.query_string}
        return web.json_response(answer, status=up.status)

    app = web.Application()
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/health", health)
    for p in PATHS:
        app.router.add_post(p, handle)
    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--signal-dir", type=Path)
    ap.add_argument("--forward-all", action="store_true")
    a = ap.parse_args()
    web.run_app(make_app(a.name, a.upstream, a.signal_dir, a.forward_all), host="127.0.0.1", port=a.port,
                print=None, access_log=None)


if __name__ == "__main__":
    main()
