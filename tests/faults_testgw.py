"""A tiny test gateway for the fault suite (aiohttp, loopback only).

Forwards each request on the three dialect paths to the same path on its upstream (its mock
channel), with the client's query string and every client header except hop-by-hop ones (so
credentials reach the mock, as with a pass-through gateway).  The client header
``x-faultgw-mode`` picks a behaviour:

``normal``  one upstream call; the upstream answer is relayed (streams too).
``triple``  three upstream calls in a row, ``model`` rewritten to ``call<i>-<model>``; the last
            answer is relayed.
``echo``    one call, then the answer gets ``echo`` = every client header and the raw query
            (a gateway leaking credentials into its answers).

Run: python tests/faults_testgw.py --port PORT --upstream URL
"""

from __future__ import annotations

import argparse
import json

import aiohttp
from aiohttp import web

PATHS = ("/v1/chat/completions", "/v1/responses", "/v1/messages")
HOP = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding", "x-faultgw-mode"}


def make_app(upstream: str) -> web.Application:
    session: dict[str, aiohttp.ClientSession] = {}

    async def on_startup(app: web.Application) -> None:
        session["s"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), auto_decompress=False)

    async def on_cleanup(app: web.Application) -> None:
        await session["s"].close()

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def handle(request: web.Request) -> web.StreamResponse:
        mode = request.headers.get("x-faultgw-mode", "normal")
        body = await request.json()
        fwd = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        url = upstream.rstrip("/") + request.path + (f"?{request.query_string}" if request.query_string else "")
        calls = 3 if mode == "triple" else 1
        model = body.get("model")
        for i in range(1, calls + 1):
            if mode == "triple":
                body["model"] = f"call{i}-{model}"
            up = await session["s"].post(url, data=json.dumps(body).encode(), headers=fwd)
            if i == calls and body.get("stream") and up.status < 300:
                resp = web.StreamResponse(status=up.status, headers={"content-type": up.headers.get("content-type", "")})
                await resp.prepare(request)
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                up.release()
                return resp
            raw = await up.read()
            up.release()
        answer = json.loads(raw) if raw else {}
        if mode == "echo" and isinstance(answer, dict):
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
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    a = ap.parse_args()
    web.run_app(make_app(a.upstream), host="127.0.0.1", port=a.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
