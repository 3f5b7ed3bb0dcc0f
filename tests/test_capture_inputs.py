"""capture's input validation: corpus, gateway selection, gateways file, output dir.

Every bad input must give exactly one line naming the file/option, the item and the field,
exit code 2, no traceback, and no traffic (no mock started, no run directory created).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gatewaylens.capture.cli import main
from gatewaylens.capture.corpus import InputError, load_corpus

# Port 9 (discard) on loopback: nothing listens, so any accidental traffic would fail loudly.
GW = ["--gateway", "mine=http://127.0.0.1:9", "--mock", "http://127.0.0.1:9", "--no-start-mock"]


def chat_case(cid: str = "a", **over: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"id": cid, "dialect": "chat", "stream": False, "note": "probe",
                         "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}
    c.update(over)
    return c


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    return res.exit_code, res.stderr


def corpus_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | bytes) -> str:
    p = tmp_path / "corpus.json"
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    code, err = run(tmp_path, monkeypatch, ["--corpus", "corpus.json", *GW])
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "output").exists(), "a bad corpus must stop before anything is created"
    return lines[0]


@pytest.mark.parametrize(("content", "expected"), [
    ('{"cases": [', "corpus.json: invalid JSON: Expecting value (line 1, column 12)"),
    (json.dumps({"cases": [chat_case("a"), chat_case("b"), chat_case("a")]}),
     "corpus.json: case 'a': id: duplicate id (first used by case #0)"),
    (json.dumps({"cases": [chat_case("a", dialect="completions")]}),
     "corpus.json: case 'a': dialect: Input should be 'chat', 'responses' or 'messages'"),
    (json.dumps({"cases": [chat_case("a", stream=True)]}),
     "corpus.json: case 'a': stream: stream is true but body.stream is None"),
    (json.dumps({"cases": [chat_case("a"), {k: v for k, v in chat_case("b").items() if k != "note"}]}),
     "corpus.json: case 'b': note: Field required"),
    (json.dumps({"cases": [{k: v for k, v in chat_case("a").items() if k != "id"}]}),
     "corpus.json: case #0: id: Field required"),
    (json.dumps({"cases": [chat_case("a", body=["not", "an", "object"])]}),
     "corpus.json: case 'a': body: Input should be a valid dictionary"),
    (json.dumps({"cases": [chat_case("a", script=[{"status": 9999}])]}),
     "corpus.json: case 'a': script[0].status: Input should be less than or equal to 599"),
    (json.dumps({"cases": [chat_case("Bad Id")]}),
     "corpus.json: case 'Bad Id': id: must be a slug: lower-case letters, digits, '.', '_', '-'"),
    (json.dumps({"cases": [chat_case("a", surprise=1)]}),
     "corpus.json: case 'a': surprise: Extra inputs are not permitted"),
    (json.dumps({"cases": [7]}), "corpus.json: case #0: expected an object, got int"),
    (json.dumps({"cases": []}), "corpus.json: cases: the corpus has no cases"),
    (json.dumps({"version": "x", "cases": [chat_case()]}), "corpus.json: version 'x'; this gatewaylens reads corpus version 1"),
    (json.dumps({"version": 2, "cases": [chat_case()]}),
     "corpus.json: version 2; this gatewaylens reads corpus version 1 (written by a newer gatewaylens: upgrade to read it)"),
    ("[]", "corpus.json: cases: the corpus has no cases"),
    ('"just a string"', "corpus.json: expected an object with a 'cases' list, got str"),
    ("", "corpus.json: empty file, expected JSON"),
])
def test_corpus_errors_are_one_exact_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str,
                                          expected: str) -> None:
    assert corpus_error(tmp_path, monkeypatch, content) == expected


def test_corpus_invalid_utf8_and_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert corpus_error(tmp_path, monkeypatch, b'{"cases": ["\xff\xfe"]}') == "corpus.json: not valid UTF-8 (byte 12)"
    code, err = run(tmp_path, monkeypatch, ["--corpus", "nope.json", *GW])
    assert (code, err.strip()) == (2, "nope.json: file not found")


def test_corpus_huge_value_and_deep_nesting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    line = corpus_error(tmp_path, monkeypatch, '{"cases": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert line.startswith("corpus.json: ")
    huge = json.dumps({"cases": [chat_case("a", stream="x" * 1_000_000)]})
    line = corpus_error(tmp_path, monkeypatch, huge)
    assert line == "corpus.json: case 'a': stream: Input should be a valid boolean"  # strict: no "yes"/1
    assert len(line) < 300


def test_valid_corpus_loads_with_hash(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"cases": [chat_case("a", upstream="anthropic"), chat_case("b")]}))
    loaded = load_corpus(p)
    assert [c.id for c in loaded.corpus.cases] == ["a", "b"]
    assert loaded.corpus.cases[0].upstreams() == ["anthropic"]
    assert loaded.corpus.cases[1].upstreams() == ["openai", "anthropic"]
    assert len(loaded.sha256) == 64
    p.write_text(json.dumps([chat_case("a"), chat_case("a")]))
    with pytest.raises(InputError, match=r"c\.json: case 'a': id: duplicate id \(first used by case #0\)$"):
        load_corpus(p)


def good_corpus(tmp_path: Path) -> None:
    (tmp_path / "corpus.json").write_text(json.dumps({"cases": [chat_case("a")]}))


@pytest.mark.parametrize(("args", "expected"), [
    (["--gateways", "nope,litellm-typo"], "--gateways: unknown gateway 'nope', 'litellm-typo'; known gateways: "),
    (["--gateways", " , "], "--gateways: empty selection; known gateways: "),
    ([], "no gateway selected: use --gateways NAMES, --gateway NAME=URL or --gateways-file FILE; known gateways: "),
    (["--gateway", "mine"], "--gateway: expected NAME=URL"),
    (["--gateway", "bad name=http://127.0.0.1:1"], "--gateway bad name: NAME must match"),
    (["--gateway", "mine=ftp://x"], "--gateway mine: URL must look like http://HOST:PORT"),
    (["--gateway", "mine:azure=http://127.0.0.1:1"], "--gateway mine:azure: upstream kind must be one of openai, anthropic"),
    (["--gateway", "a=http://127.0.0.1:1", "--gateway", "a=http://127.0.0.1:2"], "gateway 'a' selected twice"),
    (["--gateway", "a=http://127.0.0.1:1", "--dialects", "chat,soap"], "--dialects: unknown dialect 'soap'; known dialects: chat, responses, messages"),
    (["--gateway", "a=http://127.0.0.1:1", "--resume"], "--resume needs --out DIR"),
    (["--gateway", "a=http://127.0.0.1:1", "--cases", "zzz*"], "no case matches the filters"),
])
def test_selection_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str) -> None:
    good_corpus(tmp_path)
    code, err = run(tmp_path, monkeypatch, [*args, "--mock", "http://127.0.0.1:9", "--no-start-mock"])
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.strip().startswith(expected), err
    assert not (tmp_path / "output").exists()


def test_unknown_gateway_lists_known_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gatewaylens.capture.gateways import known_names

    good_corpus(tmp_path)
    _, err = run(tmp_path, monkeypatch, ["--gateways", "nope"])
    assert err.strip().endswith("known gateways: " + (", ".join(known_names()) or "(none installed in this build)"))


@pytest.mark.parametrize(("content", "expected"), [
    ("{", "gw.json: invalid JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
    (json.dumps({"gateways": [{"name": "x", "routes": []}]}), "gw.json: gateway 'x': base_url: Field required"),
    (json.dumps({"gateways": [{"name": "x", "base_url": "http://127.0.0.1:1",
                               "routes": [{"dialect": "soap", "upstream": "openai", "path": "/p"}]}]}),
     "gw.json: gateway 'x': routes[0].dialect: Input should be 'chat', 'responses' or 'messages'"),
    (json.dumps({"gateways": [{"name": "x", "base_url": "nope", "routes": []}]}),
     "gw.json: gateway 'x': base_url: URL must look like http://HOST:PORT, got 'nope'"),
    (json.dumps({"gateways": [{"name": "x", "base_url": "http://127.0.0.1:1", "routes": []}]}),
     "gw.json: gateway 'x': routes: a gateway needs at least one route"),
    (json.dumps({"gateways": []}), "gw.json: gateways: the file defines no gateways"),
    (json.dumps({"gateways": [], "extra": 1}), "gw.json: extra: unknown field (expected only 'gateways')"),
])
def test_gateways_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, expected: str) -> None:
    good_corpus(tmp_path)
    (tmp_path / "gw.json").write_text(content)
    code, err = run(tmp_path, monkeypatch, ["--gateways-file", "gw.json", "--mock", "http://127.0.0.1:9", "--no-start-mock"])
    assert (code, err.strip()) == (2, expected)


def test_out_dir_holding_a_run_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good_corpus(tmp_path)
    (tmp_path / "prev").mkdir()
    (tmp_path / "prev" / "exchanges.jsonl").write_text("")
    code, err = run(tmp_path, monkeypatch, [*GW, "--corpus", "corpus.json", "--out", "prev"])
    assert code == 2
    assert err.strip() == "--out prev: already holds a run; use --resume to complete it, or another directory"


def test_no_mock_and_no_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good_corpus(tmp_path)
    code, err = run(tmp_path, monkeypatch, GW)
    assert code == 2
    assert err.strip().startswith("--mock http://127.0.0.1:9: nothing answers there (--no-start-mock given)")
    assert not (tmp_path / "output").exists()


def test_secret_in_gateway_url_not_echoed_in_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good_corpus(tmp_path)
    code, err = run(tmp_path, monkeypatch, ["--gateway", "mine=ftp://h/?api_key=sk-canary-0123456789abcdefXYZ",
                                            "--mock", "http://127.0.0.1:9", "--no-start-mock"])
    assert code == 2
    assert "sk-canary" not in err and "REDACTED" in err


# ----------------------------------------------------------------------------------------------
# A corpus directory (corpus.d/ style) and several corpus paths
# ----------------------------------------------------------------------------------------------


def _write(path: Path, cases: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cases": cases}))


def test_a_directory_merges_every_json_file_in_name_order(tmp_path: Path) -> None:
    _write(tmp_path / "d" / "20-late.json", [chat_case("c")])
    _write(tmp_path / "d" / "10-early.json", [chat_case("a"), chat_case("b")])
    (tmp_path / "d" / "notes.txt").write_text("not a corpus")
    loaded = load_corpus(tmp_path / "d")
    assert [c.id for c in loaded.corpus.cases] == ["a", "b", "c"]
    assert loaded.origin == {"a": f"{tmp_path / 'd'}/10-early.json", "b": f"{tmp_path / 'd'}/10-early.json",
                             "c": f"{tmp_path / 'd'}/20-late.json"}
    # the run keeps one merged corpus.json, which loads back to the same cases
    copy = tmp_path / "copy.json"
    copy.write_text(loaded.copy_text())
    assert [c.id for c in load_corpus(copy).corpus.cases] == ["a", "b", "c"]
    # the hash covers every file: changing one changes it
    before = loaded.sha256
    _write(tmp_path / "d" / "20-late.json", [chat_case("c", note="probe 2")])
    assert load_corpus(tmp_path / "d").sha256 != before


def test_a_file_and_a_directory_merge_and_a_single_file_keeps_its_own_hash(tmp_path: Path) -> None:
    import hashlib

    _write(tmp_path / "corpus.json", [chat_case("a")])
    _write(tmp_path / "corpus.d" / "pack.json", [chat_case("b")])
    both = load_corpus([tmp_path / "corpus.json", tmp_path / "corpus.d"])
    assert [c.id for c in both.corpus.cases] == ["a", "b"]
    one = load_corpus(tmp_path / "corpus.json")
    assert one.sha256 == hashlib.sha256((tmp_path / "corpus.json").read_bytes()).hexdigest()
    assert one.copy_text() == (tmp_path / "corpus.json").read_text()


@pytest.mark.parametrize(("files", "expected"), [
    ({"10-a.json": [chat_case("a")], "20-b.json": [chat_case("a")]},
     "corpus.d/20-b.json: case 'a': id: duplicate id (also in corpus.d/10-a.json)"),
    ({"10-a.json": [chat_case("a")], "20-b.json": [chat_case("b", stream=True)]},
     "corpus.d/20-b.json: case 'b': stream: stream is true but body.stream is None"),
    ({"10-a.json": [chat_case("a", expect=[{"path": "x", "must": "keep"}])]},
     "corpus.d/10-a.json: case 'a': expect[0].must: Input should be 'honour', 'convert', 'reject_ok', "),
    ({"10-a.json": [chat_case("a")], "20-b.json": {"cases": []}}, "corpus.d/20-b.json: cases: the corpus has no cases"),
    ({}, "corpus.d: directory holds no *.json corpus file"),
])
def test_a_bad_file_in_the_directory_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         files: dict[str, Any], expected: str) -> None:
    (tmp_path / "corpus.d").mkdir()
    for name, content in files.items():
        (tmp_path / "corpus.d" / name).write_text(json.dumps(content if isinstance(content, dict) else {"cases": content}))
    code, err = run(tmp_path, monkeypatch, ["--corpus", "corpus.d", *GW])
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(expected), lines[0]
    assert not (tmp_path / "output").exists()


def test_default_corpus_adds_corpus_d_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No --corpus: corpus.json, plus corpus.d/ beside it; a clash between them is caught at once."""
    _write(tmp_path / "corpus.json", [chat_case("a")])
    _write(tmp_path / "corpus.d" / "pack.json", [chat_case("a")])
    code, err = run(tmp_path, monkeypatch, GW)
    assert code == 2
    assert err.strip() == "corpus.d/pack.json: case 'a': id: duplicate id (also in corpus.json)"


# --- issue 12: gaps that used to pass validation and fail at send time --------------------------


@pytest.mark.parametrize(("over", "field", "text"), [
    ({"stream": "yes"}, "stream", "valid boolean"),
    ({"stream": 1}, "stream", "valid boolean"),
    ({"body": {"model": "m", "messages": [], "stream": "yes"}}, "body", "body.stream must be true or false, got 'yes'"),
    ({"headers": {"x-note": "a\r\nx-injected: 1"}}, "headers", "'x-note': the value holds CR or LF"),
    ({"headers": {"x-note": "nul\x00"}}, "headers", "'x-note': the value holds NUL"),
    ({"headers": {"x-note": "caf\u00e9"}}, "headers", "printable ASCII"),
    ({"headers": {"bad name": "v"}}, "headers", "'bad name' is not a valid HTTP header name"),
    ({"headers": {"": "v"}}, "headers", "is not a valid HTTP header name"),
])
def test_strict_stream_and_sendable_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, over: dict[str, Any],
                                            field: str, text: str) -> None:
    line = corpus_error(tmp_path, monkeypatch, json.dumps({"cases": [chat_case("a"), chat_case("b", **over)]}))
    assert line.startswith(f"corpus.json: case 'b': {field}: "), line
    assert text in line, line
    assert "\r" not in line and "\x00" not in line


@pytest.mark.parametrize(("args", "expected"), [
    (["--gateway", "g=http://127.0.0.1:99999"], "--gateway g: URL 'http://127.0.0.1:99999' is not usable: Port out of range"),
    (["--gateway", "g=http://127.0.0.1:abc"], "--gateway g: URL 'http://127.0.0.1:abc' is not usable"),
    (["--gateway", "g=http://127.0.0.1:0"], "port 0"),
    (["--gateway", "g=http://127.0.0.1:9", "--mock", "http://127.0.0.1:70000"], "--mock: URL"),
    (["--gateway", "g=http://127.0.0.1:9", "--channel-base", "http://mock:123456"], "--channel-base: URL"),
])
def test_bad_urls_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str) -> None:
    (tmp_path / "corpus.json").write_text(json.dumps({"cases": [chat_case("a")]}))
    code, err = run(tmp_path, monkeypatch, ["--corpus", "corpus.json", "--no-start-mock", *args])
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and expected in err, err
    assert "Traceback" not in err and "ExceptionGroup" not in err and "internal" not in err


def test_gateways_file_header_with_line_break_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "corpus.json").write_text(json.dumps({"cases": [chat_case("a")]}))
    gw = {"gateways": [{"name": "g", "base_url": "http://127.0.0.1:9", "client_headers": {"authorization": "a\nb"},
                        "routes": [{"dialect": "chat", "upstream": "openai", "path": "/v1/chat/completions",
                                    "headers": {"x-ok": "fine"}}]}]}
    (tmp_path / "gw.json").write_text(json.dumps(gw))
    code, err = run(tmp_path, monkeypatch, ["--corpus", "corpus.json", "--gateways-file", "gw.json",
                                            "--mock", "http://127.0.0.1:9", "--no-start-mock"])
    assert code == 2 and err.strip() == ("gw.json: gateway 'g': client_headers: header 'authorization': the value holds "
                                         "CR or LF; header values must be printable ASCII"), err
    gw["gateways"][0]["client_headers"] = {}
    gw["gateways"][0]["routes"][0]["headers"] = {"x a": "v"}
    (tmp_path / "gw.json").write_text(json.dumps(gw))
    code, err = run(tmp_path, monkeypatch, ["--corpus", "corpus.json", "--gateways-file", "gw.json",
                                            "--mock", "http://127.0.0.1:9", "--no-start-mock"])
    assert code == 2 and "gw.json: gateway 'g': routes[0].headers: header name 'x a'" in err, err
