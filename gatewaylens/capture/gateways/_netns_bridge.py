"""Loopback bridges between the host and a private network namespace (used for BricksLLM).

BricksLLM v1.45.2 listens on fixed ports (``:8001`` admin, ``:8002`` proxy, every interface) and
sends OpenAI/Anthropic traffic to hard-coded ``https://api.openai.com`` / ``https://api.anthropic.com``
URLs.  The launcher therefore runs it in a private network namespace that has nothing but its own
loopback (no packet can leave it) and in which ``/etc/hosts`` maps those two names to 127.0.0.1.
This module is the plumbing around that namespace.  Unix sockets in the run's temp dir are the
only way across (file system paths are shared between namespaces):

* ``--relay tcp:HOST:PORT>unix:PATH`` / ``--relay unix:PATH>tcp:HOST:PORT``: a byte-for-byte relay
  (on the host: the gateway's port for clients; inside: the socket to BricksLLM's fixed port).
* ``--http HOST:PORT`` (``--tls-cert``/``--tls-key`` for HTTPS) with ``--upstream-unix PATH
  --prefix /ch/<name>``: inside the namespace, plays api.openai.com/api.anthropic.com.  It
  forwards each request unchanged (method, headers including ``Host``, body) to the mock through
  the Unix socket, only putting the mock channel prefix in front of the path, and streams the
  mock's answer back unchanged (no decompression, no added headers).

Run as ``python -m gatewaylens.capture.gateways._netns_bridge ...``; it serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import ssl

import aiohttp
from aiohttp import web

# hop-by-hop headers (RFC 9110 section 7.6.1) are the only ones not forwarded as they came
from gatewaylens.dialects import HOP_BY_HOP_HEADERS


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()


def _endpoint(spec: str) -> tuple[str, str, int]:
    kind, _, rest = spec.partition(":")
    if kind == "unix":
        return "unix", rest, 0
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        return "tcp", host, int(port)
    raise SystemExit(f"bad endpoint {spec!r}: use tcp:HOST:PORT or unix:PATH")


async def start_relay(spec: str) -> asyncio.AbstractServer:
    src, _, dst = spec.partition(">")
    s_kind, s_addr, s_port = _endpoint(src)
    d_kind, d_addr, d_port = _endpoint(dst)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if d_kind == "unix":
                up_r, up_w = await asyncio.open_unix_connection(d_addr)
            else:
                up_r, up_w = await asyncio.open_connection(d_addr, d_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
        for w in (writer, up_w):
            with contextlib.suppress(Exception):
                w.close()

    if s_kind == "unix":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(s_addr)  # a stale socket from an earlier run
        return await asyncio.start_unix_server(handle, s_addr)
    return await asyncio.start_server(handle, s_addr, s_port)


_SESSION = web.AppKey("session", aiohttp.ClientSession)


def forward_app(upstream_unix: str, prefix: str) -> web.Application:
    """An HTTP app that forwards every request to the mock through ``upstream_unix``."""
    app = web.Application(client_max_size=64 * 1024 * 1024)

    async def on_startup(app: web.Application) -> None:
        app[_SESSION] = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=upstream_unix),
            auto_decompress=False,  # pass the mock's bytes back exactly as sent
            # aiohttp would otherwise add its own User-Agent/Accept/Accept-Encoding/Content-Type,
            # which the mock would record as if the gateway had sent them.
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=600),
        )

    async def on_cleanup(app: web.Application) -> None:
        await app[_SESSION].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP_HEADERS and k.lower() != "content-length"]
        # The Host header is kept as the gateway sent it (api.openai.com / api.anthropic.com), so the
        # mock's record shows which upstream the gateway meant to call.
        url = f"http://mock{prefix}{request.rel_url}"
        session = request.app[_SESSION]
        async with session.request(request.method, url, headers=headers, data=body or None,
                                   allow_redirects=False) as up:
            resp = web.StreamResponse(status=up.status, reason=up.reason)
            for k, v in up.headers.items():
                if k.lower() not in HOP_BY_HOP_HEADERS:
                    resp.headers.add(k, v)
            await resp.prepare(request)
            async for chunk in up.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp

    app.router.add_route("*", "/{tail:.*}", forward)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


async def _main(args: argparse.Namespace) -> None:
    servers = [await start_relay(spec) for spec in args.relay]
    runner: web.AppRunner | None = None
    if args.http:
        if not args.upstream_unix:
            raise SystemExit("--http needs --upstream-unix")
        runner = web.AppRunner(forward_app(args.upstream_unix, args.prefix.rstrip("/")), access_log=None)
        await runner.setup()
        for spec in args.http:
            host, _, port = spec.rpartition(":")
            ctx: ssl.SSLContext | None = None
            if args.tls_cert and int(port) == 443:
                ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                ctx.load_cert_chain(args.tls_cert, args.tls_key)
            await web.TCPSite(runner, host, int(port), ssl_context=ctx).start()
    if args.ready_file:
        with open(args.ready_file, "w", encoding="utf-8") as f:  # noqa: ASYNC230 - once, tiny
            f.write("ready\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()
    if runner is not None:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--relay", action="append", default=[], help="SRC>DST, each tcp:HOST:PORT or unix:PATH")
    p.add_argument("--http", action="append", default=[], help="HOST:PORT to serve the forwarder on (443: TLS)")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--upstream-unix", help="Unix socket that reaches the mock")
    p.add_argument("--prefix", default="", help="path prefix of the mock channel, e.g. /ch/bricksllm")
    p.add_argument("--ready-file", help="written once every listener is up")
    asyncio.run(_main(p.parse_args(argv)))


if __name__ == "__main__":
    main()
