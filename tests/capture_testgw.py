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
raw query to the JSON answer; ``canary``: send every shape of secret in :data:`GATEWAY_CANARIES`
upstream (JSON body keys, JSON-valued headers, credential headers, a key in a URL path, ``?pwd=``)
and echo them all back to the client, with the client's own headers and body (a debug-happy
gateway: JSON answer fields, a response header, and an extra SSE frame before a relayed stream).

Stream and usage modes (the answer is read whole from the upstream, rewritten, and relayed; each
breaks exactly one thing, for analyze's stream checks): ``rechunk``: every text delta split in
two (a faithful re-chunking); ``drop-delta``: the second text delta left out; ``reorder-stop``
(Messages): the last ``content_block_stop`` sent after ``message_delta``; ``usage-after-done``
(Chat Completions): the usage chunk sent after ``data: [DONE]``; ``lose-cached``: the cached-token
counter removed from the usage; ``plus-one``: one added to the output token count.

Conversation modes (cross-turn checks): ``ids-mapped``: tool-call ids the upstream issues reach the
client as ``gwtool_<n>``, and are mapped back to the upstream's own on later requests;
``ids-lost``: the same rewrite, but the map is forgotten, so each id on a later request becomes a
fresh one (a call and its result no longer match); ``drop-signature``: thinking signatures are
removed from answers (the ``signature`` field, and ``signature_delta`` frames of a stream).

With ``--forward-all`` (the fault suite's pass-through gateway) every client header except
hop-by-hop ones, and the query string, are forwarded, so credentials reach the mock.

Run: python tests/capture_testgw.py --name NAME --port PORT --upstream URL [--signal-dir DIR] [--forward-all]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

PATHS = ("/v1/chat/completions", "/v1/responses", "/v1/messages")


#: Tool-call ids the mock issues (gatewaylens/mock/answers.py) and the ones this gateway makes up.
UPSTREAM_ID = re.compile(r"(?:call_gwl|toolu_gwl)[0-9a-f]{24}")
OWN_ID = re.compile(r"gwtool_[0-9]+")
CONVERSATION_MODES = {"ids-mapped", "ids-lost", "drop-signature"}


class Rewriter:
    """The conversation modes' rewrites, on JSON text (one body, or one SSE data line)."""

    def __init__(self) -> None:
        self.counter = itertools.count(1)
        self.to_client: dict[str, str] = {}
        self.to_upstream: dict[str, str] = {}

    def answer(self, mode: str, text: str) -> str:
        if mode in ("ids-mapped", "ids-lost"):
            def own(m: re.Match[str]) -> str:
                orig = m.group(0)
                if orig not in self.to_client:
                    new = f"gwtool_{next(self.counter)}"
                    self.to_client[orig] = new
                    if mode == "ids-mapped":
                        self.to_upstream[new] = orig
                return self.to_client[orig]
            return UPSTREAM_ID.sub(own, text)
        if mode == "drop-signature" and "signature" in text:
            try:
                data = json.loads(text)
            except ValueError:
                return text
            if isinstance(data, dict) and isinstance(data.get("delta"), dict) and data["delta"].get("type") == "signature_delta":
                return ""  # the frame is left out
            return json.dumps(_without_signatures(data))
        return text

    def request(self, mode: str, text: str) -> str:
        if mode == "ids-mapped":
            return OWN_ID.sub(lambda m: self.to_upstream.get(m.group(0), m.group(0)), text)
        if mode == "ids-lost":  # the map is gone: every occurrence gets an id of its own
            return OWN_ID.sub(lambda m: f"toolu_{uuid.uuid4().hex[:24]}", text)
        return text


def _without_signatures(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_signatures(v) for k, v in value.items() if k != "signature"}
    if isinstance(value, list):
        return [_without_signatures(v) for v in value]
    return value


HOP = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding", "x-testgw-mode"}
REWRITE_MODES = {"rechunk", "drop-delta", "reorder-stop", "usage-after-done", "lose-cached", "plus-one"}
Frame = tuple[str | None, str]


def parse_sse(text: str) -> list[Frame]:
    """``(event, data)`` per SSE frame (a plain parser: this gateway stays independent of gatewaylens)."""
    out: list[Frame] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if data:
            out.append((event, "\n".join(data)))
    return out


def encode_sse(frames: list[Frame]) -> bytes:
    return "".join((f"event: {e}\n" if e else "") + f"data: {d}\n\n" for e, d in frames).encode()


def _usage_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    for holder in (obj, obj.get("response"), obj.get("message")):
        if isinstance(holder, dict) and isinstance(holder.get("usage"), dict):
            usage: dict[str, Any] = holder["usage"]
            return usage
    return None


def rewrite_usage(usage: dict[str, Any], mode: str) -> None:
    if mode == "lose-cached":
        for details in ("prompt_tokens_details", "input_tokens_details"):
            if isinstance(usage.get(details), dict):
                usage[details].pop("cached_tokens", None)
        usage.pop("cache_read_input_tokens", None)
    elif mode == "plus-one":
        for key in ("completion_tokens", "output_tokens"):
            if isinstance(usage.get(key), int):
                usage[key] += 1


def _text_delta(obj: Any) -> tuple[dict[str, Any], str] | None:
    """(the dict holding a text delta, its key) in any dialect's text-delta frame."""
    if not isinstance(obj, dict):
        return None
    if obj.get("type") == "response.output_text.delta":
        return obj, "delta"
    delta = obj.get("delta")
    if obj.get("type") == "content_block_delta" and isinstance(delta, dict) and delta.get("type") == "text_delta":
        return delta, "text"
    for ch in obj.get("choices") or ():
        d = ch.get("delta") if isinstance(ch, dict) else None
        if isinstance(d, dict) and isinstance(d.get("content"), str) and d["content"]:
            return d, "content"
    return None


def rewrite_stream(frames: list[Frame], mode: str) -> list[Frame]:
    parsed: list[tuple[str | None, Any]] = []
    for event, data in frames:
        try:
            parsed.append((event, json.loads(data)))
        except ValueError:
            parsed.append((event, data))
    out: list[tuple[str | None, Any]] = []
    seen_text = 0
    for event, obj in parsed:
        holder = _text_delta(obj)
        if holder is not None:
            seen_text += 1
            d, key = holder
            if mode == "drop-delta" and seen_text == 2:
                continue
            if mode == "rechunk" and len(d[key]) > 1:
                whole = d[key]
                cut = len(whole) // 2
                d[key] = whole[:cut]
                out.append((event, json.loads(json.dumps(obj))))
                d[key] = whole[cut:]
        if isinstance(obj, dict) and mode in ("lose-cached", "plus-one"):
            usage = _usage_of(obj)
            if usage is not None:
                rewrite_usage(usage, mode)
        out.append((event, obj))
    if mode == "reorder-stop":
        stops = [i for i, (_, o) in enumerate(out) if isinstance(o, dict) and o.get("type") == "content_block_stop"]
        deltas = [i for i, (_, o) in enumerate(out) if isinstance(o, dict) and o.get("type") == "message_delta"]
        if stops and deltas:
            out.insert(deltas[0], out.pop(stops[-1]))  # message_delta moves before the last stop
    if mode == "usage-after-done":
        at = [i for i, (_, o) in enumerate(out) if isinstance(o, dict) and o.get("usage") and not o.get("choices")]
        if at:
            out.append(out.pop(at[-1]))
    # Responses events keep a sequence_number that counts every event.
    seq = 0
    for _, obj in out:
        if isinstance(obj, dict) and "sequence_number" in obj:
            obj["sequence_number"] = seq
            seq += 1
    return [(e, o if isinstance(o, str) else json.dumps(o, ensure_ascii=False)) for e, o in out]

#: What the ``canary`` mode sends upstream and echoes back: one value per shape of secret the
#: redaction must catch without being told (capture cannot know a custom gateway's own keys).
GATEWAY_CANARIES = {
    "body.api_key": "cnryGwBodyApiKey01",
    "body.aws_secret_access_key": "cnryGwAwsSecretAccess02",
    "body.password": "cnryGwPassword03",
    "body.extra.openai.key": "cnryGwExtraOpenaiKey04",
    "body.nested_jwt": "eyJhbGciOiJub25lIn0.eyJjbnJ5IjoiZ3cifQ.cnryGwJwtSig05",
    "header.x-portkey-config.api_key": "cnryGwPortkeyCfgKey06",
    "header.x-portkey-config.targets[].api_key": "cnryGwPortkeyTarget07",
    "header.x-portkey-custom-headers.Authorization": "cnryGwCustomAuth08",
    "header.x-github-pat": "cnryGwGithubPat09",
    "header.x-upstream-cred": "cnryGwUpstreamCred10",
    "path": "sk-cnryGwPathKey11",
    "query.pwd": "cnryGwQueryPwd12",
    "header.authorization": "sk-cnryGwUpstreamKey13",
}


def canary_upstream(body: dict[str, Any], fwd: dict[str, str]) -> None:
    """Add every gateway-side canary to the upstream request (body and headers), in place."""
    c = GATEWAY_CANARIES
    body["api_key"] = c["body.api_key"]
    body["aws_secret_access_key"] = c["body.aws_secret_access_key"]
    body["password"] = c["body.password"]
    body["extra"] = {"openai": {"key": c["body.extra.openai.key"]}}
    body["metadata"] = {"trace": {"context": {"session": c["body.nested_jwt"]}}}
    fwd["x-portkey-config"] = json.dumps({"provider": "openai", "api_key": c["header.x-portkey-config.api_key"],
                                          "targets": [{"provider": "openai",
                                                       "api_key": c["header.x-portkey-config.targets[].api_key"]}]})
    fwd["x-portkey-custom-headers"] = json.dumps(
        {"Authorization": f"Bearer {c['header.x-portkey-custom-headers.Authorization']}"})
    fwd["x-github-pat"] = c["header.x-github-pat"]
    fwd["x-upstream-cred"] = c["header.x-upstream-cred"]
    fwd["authorization"] = f"Bearer {c['header.authorization']}"


def make_app(name: str, upstream: str, signal_dir: Path | None, forward_all: bool = False) -> web.Application:
    session: dict[str, aiohttp.ClientSession] = {}
    rewriter = Rewriter()

    async def on_startup(app: web.Application) -> None:
        session["s"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))

    async def on_cleanup(app: web.Application) -> None:
        await session["s"].close()

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "name": name})

    async def handle(request: web.Request) -> web.StreamResponse:
        mode = request.headers.get("x-testgw-mode", "normal")
        if mode in CONVERSATION_MODES:
            body = json.loads(rewriter.request(mode, await request.text()))
        else:
            body = await request.json()
        body["model"] = f"{name}-{body.get('model')}"
        fwd = {"content-type": "application/json", "x-testgw": name}
        if forward_all:
            fwd.update({k: v for k, v in request.headers.items() if k.lower() not in HOP})
        for h in ("authorization", "x-api-key", "anthropic-version"):
            if h in request.headers:
                fwd[h] = request.headers[h]
        client_headers = dict(request.headers)
        client_body = dict(body)
        if mode == "canary":
            canary_upstream(body, fwd)
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
        # /k/<key>/v1/...: a key in the client's URL path (a gateway addressed by key); not forwarded.
        key = request.match_info.get("key")
        path = request.path.split(f"/k/{key}", 1)[1] if key else request.path
        url = upstream.rstrip("/") + path
        if forward_all and request.query_string:
            url += f"?{request.query_string}"
        echo: dict[str, Any] = {}
        if mode == "canary":
            # A key in a URL path (answered 404 by the mock, recorded all the same), then ?pwd= on the real call.
            leak_url = upstream.rstrip("/") + path + "/" + GATEWAY_CANARIES["path"]
            leak = await session["s"].post(leak_url, data=json.dumps(body).encode(), headers=fwd)
            leak.release()
            url += ("&" if "?" in url else "?") + f"pwd={GATEWAY_CANARIES['query.pwd']}"
            echo = {"upstream_url": url, "upstream_headers": fwd, "upstream_body": body,
                    "client_headers": client_headers, "client_body": client_body,
                    "message": f"Incorrect API key provided: {GATEWAY_CANARIES['header.authorization']}"}
            if request.headers.get("x-testgw-freetext"):
                # A secret of no recognisable shape, in prose: only exact-value scrubbing can catch it.
                echo["note"] = f"upstream credential {GATEWAY_CANARIES['header.x-upstream-cred']} was refused"
        calls = {"double": 2, "triple": 3}.get(mode, 1)
        model = body["model"]
        for attempt in range(3):
            if mode == "triple":
                body["model"] = f"call{attempt + 1}-{model}"
            data = json.dumps(body).encode()
            up = await session["s"].post(url, data=data, headers=fwd)
            if body.get("stream") and up.status < 300 and mode in CONVERSATION_MODES:
                return await relay_lines(request, up, mode)
            if body.get("stream") and up.status < 300 and attempt + 1 >= calls and mode in REWRITE_MODES:
                text = (await up.read()).decode("utf-8")
                up.release()
                out = encode_sse(rewrite_stream(parse_sse(text), mode))
                return web.Response(status=up.status, body=out, content_type="text/event-stream")
            if body.get("stream") and up.status < 300 and attempt + 1 >= calls and mode != "garbage-after":
                headers = {"content-type": up.headers.get("content-type", "")}
                if echo:
                    headers["x-upstream-cred"] = GATEWAY_CANARIES["header.x-upstream-cred"]
                resp = web.StreamResponse(status=up.status, headers=headers)
                await resp.prepare(request)
                if echo:  # a debug frame before the relayed stream
                    await resp.write(f"data: {json.dumps({'gateway_debug': echo})}\n\n".encode())
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
        if mode in CONVERSATION_MODES and raw:
            raw = rewriter.answer(mode, raw.decode()).encode()
        if mode == "garbage-after":
            return web.Response(status=200, body=b"\xff\xfe<<not json at all>>", content_type="application/octet-stream")
        answer = json.loads(raw) if raw else {}
        if mode == "echo" and isinstance(answer, dict):
            answer["echo_auth"] = request.headers.get("authorization")
        if mode in ("lose-cached", "plus-one") and isinstance(answer, dict) and _usage_of(answer) is not None:
            rewrite_usage(_usage_of(answer) or {}, mode)
        if mode == "echo-all" and isinstance(answer, dict):
            answer["echo"] = {"headers": dict(request.headers), "query": request.query_string}
        if echo and isinstance(answer, dict):
            answer["gateway_debug"] = echo
            return web.json_response(answer, status=up.status,
                                     headers={"x-upstream-cred": GATEWAY_CANARIES["header.x-upstream-cred"]})
        return web.json_response(answer, status=up.status)

    async def relay_lines(request: web.Request, up: aiohttp.ClientResponse, mode: str) -> web.StreamResponse:
        """A stream relayed event by event, each data line rewritten (an emptied one drops its event)."""
        resp = web.StreamResponse(status=up.status, headers={"content-type": up.headers.get("content-type", "")})
        await resp.prepare(request)
        pending: list[bytes] = []
        async for raw_line in up.content:
            line = raw_line.decode().rstrip("\r\n")
            if line.startswith("data: "):
                data = rewriter.answer(mode, line[6:])
                if not data:
                    pending = [b"__drop__"]
                    continue
                line = "data: " + data
            if pending == [b"__drop__"]:
                if not line:
                    pending = []
                continue
            if not line:
                await resp.write(b"".join(pending) + b"\n")
                pending = []
            else:
                pending.append(line.encode() + b"\n")
        if pending and pending != [b"__drop__"]:
            await resp.write(b"".join(pending) + b"\n")
        await resp.write_eof()
        up.release()
        return resp

    app = web.Application()
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/health", health)
    for p in PATHS:
        app.router.add_post(p, handle)
        app.router.add_post("/k/{key}" + p, handle)
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
