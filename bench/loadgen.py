"""A small HTTP/1.1 load generator on raw asyncio streams, run in its own process.

Why not an HTTP client library: on a 2-core machine the load generator competes with the server
for CPU, and a full client (httpx, aiohttp) spends several times more CPU per request than the
mock itself, so it would measure the client.  This one writes a prepared request and parses only
what it must (status line, ``content-length`` or ``chunked`` framing, ``connection: close``),
over keep-alive connections, with a bounded count and a bounded time.

    python -m bench.loadgen --url http://127.0.0.1:PORT/ch/x/v1/chat/completions \
        --body-file body.json --concurrency 32 --duration 3 --max-requests 100000

prints one JSON line: ``{"requests", "errors", "seconds", "rps", "statuses", "bytes"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Tally:
    requests: int = 0
    errors: int = 0
    bytes: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    first_error: str | None = None


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> tuple[int, bool]:
    """Read one response body; returns (bytes read, connection reusable)."""
    close = headers.get("connection", "").lower() == "close"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        total = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # trailers (normally none) up to the empty line
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return total, not close
            await reader.readexactly(size + 2)
            total += size
    if "content-length" in headers:
        n = int(headers["content-length"])
        await reader.readexactly(n)
        return n, not close
    data = await reader.read()  # delimited by close
    return len(data), False


async def _worker(host: str, port: int, request: bytes, deadline: float, budget: list[int], tally: Tally) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < deadline and budget[0] > 0:
        budget[0] -= 1
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                if k:
                    headers[k.strip().lower()] = v.strip()
            n, reusable = await _read_body(reader, headers)
            tally.requests += 1
            tally.bytes += n
            tally.statuses[status] += 1
            if status >= 400:
                tally.errors += 1
            if not reusable:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as e:
            tally.errors += 1
            tally.first_error = tally.first_error or f"{type(e).__name__}: {e}"[:200]
            if writer is not None:
                writer.close()
                writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


def build_request(url: str, body: bytes, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"loadgen: loopback only, got {parts.hostname!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    h = {"host": f"{parts.hostname}:{parts.port}", "content-type": "application/json",
         "content-length": str(len(body)), "connection": "keep-alive", **{k.lower(): v for k, v in headers.items()}}
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    return parts.hostname or "127.0.0.1", parts.port or 80, head.encode("latin-1") + body


async def run(url: str, body: bytes, headers: dict[str, str], concurrency: int, duration: float,
              max_requests: int, warmup: float = 0.0) -> dict[str, object]:
    host, port, request = build_request(url, body, headers)
    if warmup > 0:
        await asyncio.gather(*(_worker(host, port, request, time.perf_counter() + warmup, [10**9], Tally())
                               for _ in range(concurrency)))
    tally = Tally()
    budget = [max_requests]
    t0 = time.perf_counter()
    await asyncio.gather(*(_worker(host, port, request, t0 + duration, budget, tally) for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    ok = tally.requests - tally.errors
    return {"requests": tally.requests, "errors": tally.errors, "seconds": round(seconds, 4),
            "rps": round(ok / seconds, 1) if seconds > 0 else 0.0, "bytes": tally.bytes,
            "statuses": {str(k): v for k, v in sorted(tally.statuses.items())}, "first_error": tally.first_error}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.loadgen")
    ap.add_argument("--url", required=True)
    ap.add_argument("--body-file", required=True)
    ap.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--max-requests", type=int, default=1_000_000)
    a = ap.parse_args(argv)
    with open(a.body_file, "rb") as fh:
        body = fh.read()
    headers = dict(h.split(":", 1) for h in a.header)
    result = asyncio.run(run(a.url, body, {k.strip(): v.strip() for k, v in headers.items()}, a.concurrency,
                             a.duration, a.max_requests, a.warmup))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
