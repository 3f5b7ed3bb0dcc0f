"""The public API at ``gatewaylens`` top level: mock -> capture -> analyze -> check, in memory and quiet."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import gatewaylens
from gatewaylens.analyze.fixtures import write_fixtures
from tests.support.capture import Gateways, case


def test_all_names_resolve_and_are_documented() -> None:
    for name in gatewaylens.__all__:
        obj = getattr(gatewaylens, name)
        if name != "__version__":
            assert obj.__doc__, name
    assert callable(gatewaylens.capture) and callable(gatewaylens.analyze)
    with pytest.raises(AttributeError):
        _ = gatewaylens.no_such_thing  # type: ignore[attr-defined]


def test_load_corpus_from_data_and_shipped() -> None:
    c = gatewaylens.load_corpus({"cases": [case("one")]})
    assert [x.id for x in c.cases] == ["one"]
    assert [x.id for x in gatewaylens.load_corpus([case("bare")]).cases] == ["bare"]
    with pytest.raises(gatewaylens.InputError) as e:
        gatewaylens.load_corpus({"cases": []})
    assert "corpus data: cases: the corpus has no cases" in str(e.value)
    assert len(gatewaylens.shipped_corpus().cases) > 20
    assert "litellm" in gatewaylens.gateway_profiles()
    (p,) = gatewaylens.targets(["mygw:anthropic=http://127.0.0.1:4000"])
    assert p.name == "mygw" and p.base_url == "http://127.0.0.1:4000"


async def test_capture_analyze_check_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = signal.getsignal(signal.SIGINT)
    async with gatewaylens.MockServer() as mock:
        assert mock.port != 0 and mock.channel("g") == f"{mock.url}/ch/g"
        gws = Gateways(mock.port)
        try:
            (spec,) = gws.start("api-gw")
            corpus = gatewaylens.load_corpus({"cases": [case("api-chat"), case("api-msg", dialect="messages"),
                                                        case("api-stream", stream=True)]})
            exchanges = await gatewaylens.capture([spec], mock_url=mock.url, corpus=corpus, cases=["api-c*", "api-s*"],
                                                  out=tmp_path / "run")
        finally:
            gws.stop()
    assert signal.getsignal(signal.SIGINT) is before
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""  # quiet unless verbose=True
    assert sorted(e.case_id for e in exchanges) == ["api-chat", "api-stream"]
    assert all(isinstance(e, gatewaylens.Exchange) and e.upstream_requests for e in exchanges)

    result = gatewaylens.analyze(exchanges)
    assert isinstance(result, gatewaylens.Analysis)
    model = [b for b in result.behaviours if b.path == "model" and b.direction == "request"]
    assert model and model[0].kind == "changed"  # the test gateway rewrites model to api-gw-<model>
    assert [s.gateway for s in result.scores] == ["api-gw"] and result.scores[0].exchanges == 2
    assert any(f.path == "model" and f.after == "api-gw-gpt-4o-mini" for f in result.findings)

    write_fixtures(tmp_path / "run", tmp_path / "fx")
    res = gatewaylens.check(exchanges, tmp_path / "fx")
    assert res.unchanged and res.compared == 2
    res = gatewaylens.check(exchanges[:1], tmp_path / "fx")
    assert len(res.regressions) == 1 and "exchange missing from the run" in res.regressions[0]
