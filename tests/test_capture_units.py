"""capture's pure parts: filters, route planning, URL/header building, scrubbing, run dir files."""

from __future__ import annotations

import json
import os
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gatewaylens.capture.corpus import InputError
from gatewaylens.capture.models import Case, Exchange, GatewayProfile, Route, Unsupported
from gatewaylens.capture.rundir import BadLine, Scrubber, iter_exchanges, load_done, new_run_dir, point_latest
from gatewaylens.capture.runner import (
    client_headers,
    filter_cases,
    join_url,
    not_run_note,
    plan_items,
)
from gatewaylens.capture.secrets import collect_secrets, looks_secret
from gatewaylens.capture.selection import custom_profile
from tests.conftest import CANARIES


def mk(cid: str, dialect: str = "chat", stream: bool = False, **kw: Any) -> Case:
    body: dict[str, Any] = {"model": "m", "messages": []}
    if stream:
        body["stream"] = True
    return Case.model_validate({"id": cid, "dialect": dialect, "stream": stream, "note": "n", "body": body, **kw})


CASES = [mk("chat-a"), mk("chat-b", stream=True), mk("msg-a", "messages"), mk("resp-a", "responses", True)]


def test_filters() -> None:
    assert [c.id for c in filter_cases(CASES, "chat-*", None, None)] == ["chat-a", "chat-b"]
    assert [c.id for c in filter_cases(CASES, "chat-a,msg-*", None, None)] == ["chat-a", "msg-a"]
    assert [c.id for c in filter_cases(CASES, None, ["messages", "responses"], None)] == ["msg-a", "resp-a"]
    assert [c.id for c in filter_cases(CASES, None, None, True)] == ["chat-b", "resp-a"]
    assert [c.id for c in filter_cases(CASES, None, ["chat"], False)] == ["chat-a"]


def test_plan_routes_variants_and_unsupported() -> None:
    prof = GatewayProfile(name="g", base_url="http://127.0.0.1:1", routes=[
        Route(dialect="chat", upstream="openai", path="/v1/chat/completions"),
        Route(dialect="chat", upstream="openai", path="/openai/v1/chat/completions", passthrough=True),
        Route(dialect="chat", upstream="anthropic", path="/v1/chat/completions", model="claude", variant="alias"),
    ], unsupported=[Unsupported(dialect="messages", upstream="openai", reason="no messages->openai")])
    items = plan_items(prof, [mk("c"), mk("m", "messages", upstream="openai"), mk("r", "responses", upstream="anthropic")])
    got = [(i.id, i.unsupported) for i in items]
    assert got == [
        ("g/c/openai", None),
        ("g/c/openai/passthrough", None),
        ("g/c/anthropic/alias", None),
        ("g/m/openai", "no messages->openai"),
        ("g/r/anthropic", "g has no route for responses client requests to an anthropic upstream"),
    ]


def test_custom_gateway_upstream_kind() -> None:
    prof = custom_profile("mine", "http://127.0.0.1:1", "anthropic")
    cases = [mk("c"), mk("d")]  # each runs against both upstream kinds by default
    items = plan_items(prof, cases)
    # the openai runs are not run at all (issue #14): no "unsupported" exchange each, one note instead
    assert [(i.id, i.route is not None, i.unsupported) for i in items] == [
        ("mine/c/anthropic", True, None), ("mine/d/anthropic", True, None)]
    assert prof.upstream_only == "anthropic"
    assert not_run_note(prof, cases) == ("2 case run(s) for an openai upstream: this gateway was declared with an "
                                         "anthropic upstream (--upstream, or --gateway mine:KIND=URL)")
    assert not_run_note(prof, [mk("c").model_copy(update={"upstream": ["anthropic"]})]) is None
    assert {r.path for r in prof.routes} == {"/v1/chat/completions", "/v1/responses", "/v1/messages"}
    assert all(r.model is None for r in prof.routes)  # models as the case writes them


def test_join_url_keeps_prefix_and_query() -> None:
    assert join_url("http://h:1", "/v1/messages") == "http://h:1/v1/messages"
    assert join_url("http://h:1/proxy/", "/v1/messages") == "http://h:1/proxy/v1/messages"
    assert join_url("http://h:1/?api_key=k", "/v1/x?beta=true") == "http://h:1/v1/x?api_key=k&beta=true"


def test_client_headers_precedence_and_expansion() -> None:
    case = mk("m", "messages", headers={"Authorization": "Bearer case", "X-Case": "1"})
    prof = GatewayProfile(name="g", base_url="http://h", client_headers={"authorization": "Bearer gw"},
                          routes=[Route(dialect="messages", upstream="anthropic", path="/v1/messages",
                                        headers={"x-host": "{channel_url}/v1", "x-mock": "{mock_url}"})])
    h = client_headers(case, prof, prof.routes[0], "http://m:9/ch/g", "http://m:9/")
    assert h["authorization"] == "Bearer gw"  # the gateway's own auth wins over the case's
    assert h["x-case"] == "1" and h["anthropic-version"] == "2023-06-01"
    assert h["x-host"] == "http://m:9/ch/g/v1" and h["x-mock"] == "http://m:9"
    assert h["accept"] == "application/json"


def test_scrubber_and_what_counts_as_secret() -> None:
    s = Scrubber()
    case = mk("c", headers={"Authorization": f"Bearer {CANARIES[0]}", "Cookie": f"a=1; session={CANARIES[3]}",
                            "x-portkey-provider": "openai", "x-custom-token": CANARIES[2]})
    collect_secrets(s, [custom_profile("g", f"http://u:{CANARIES[1]}@h/?api_key={CANARIES[1]}", "openai")], [case], "http://m")
    text = json.dumps({"a": f"Bearer {CANARIES[0]}", "b": CANARIES[0], "c": CANARIES[3], "d": CANARIES[1],
                       "e": CANARIES[2], "f": "provider openai"})
    out = s(text)
    for c in CANARIES:
        assert c not in out
    assert "provider openai" in out  # ordinary words under secret-sounding names are left alone
    assert not looks_secret("openai") and not looks_secret("anthropic") and not looks_secret("http://x/1234567")
    assert looks_secret(CANARIES[2])


def ex(i: int) -> Exchange:
    return Exchange(id=f"g/c{i}/openai", case_id=f"c{i}", gateway="g", dialect="chat", stream=False, upstream="openai")


def test_load_done_truncated_tail_and_bad_middle(tmp_path: Path) -> None:
    p = tmp_path / "exchanges.jsonl"
    good = "".join(ex(i).model_dump_json() + "\n" for i in range(3))
    p.write_text(good + '{"id": "g/c3/op')
    assert [e.id for e in load_done(tmp_path)] == ["g/c0/openai", "g/c1/openai", "g/c2/openai"]
    assert p.read_text() == good  # rewritten valid
    p.write_text(good.replace("\n", "\nnot json\n", 1))
    with pytest.raises(InputError, match=r"exchanges.jsonl: line 2: not a valid exchange"):
        load_done(tmp_path)


def test_resume_and_analyze_share_one_tolerance_rule(tmp_path: Path) -> None:
    """capture's resume and analyze read exchanges.jsonl under the same rule: blank lines skipped,
    a truncated last line dropped (analyze warns), a bad line elsewhere refused by both."""
    p = tmp_path / "exchanges.jsonl"
    good = [ex(i).model_dump_json() + "\n" for i in range(3)]
    p.write_text(good[0] + "\n" + good[1] + "   \n" + good[2] + '{"id": "g/c3/op')
    warnings: list[str] = []
    assert [e.id for e in iter_exchanges(tmp_path, warnings)] == ["g/c0/openai", "g/c1/openai", "g/c2/openai"]
    assert len(warnings) == 1 and "exchanges.jsonl:6: invalid last line skipped" in warnings[0]
    assert [e.id for e in load_done(tmp_path)] == ["g/c0/openai", "g/c1/openai", "g/c2/openai"]
    assert p.read_text() == "".join(good)  # rewritten: only whole exchanges, so a resume appends cleanly
    p.write_text(good[0] + "not json\n" + good[1])
    with pytest.raises(BadLine) as err:
        list(iter_exchanges(tmp_path, []))
    assert err.value.lineno == 2 and str(err.value).startswith(f"{p}:2: field ")
    assert pickle.loads(pickle.dumps(err.value)).detail == err.value.detail  # crosses a worker process
    with pytest.raises(InputError, match=r"exchanges.jsonl: line 2: not a valid exchange \(field "):
        load_done(tmp_path)


def test_run_dir_never_reused_and_latest_is_relative(tmp_path: Path) -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    a, b = new_run_dir(tmp_path, now), new_run_dir(tmp_path, now)
    assert (a.name, b.name) == ("20300102T030405Z", "20300102T030405Z-2")
    point_latest(tmp_path, a)
    point_latest(tmp_path, b)
    assert os.readlink(tmp_path / "latest") == "runs/20300102T030405Z-2"
    assert (tmp_path / "latest").resolve() == b.resolve()
