"""The installable package: build the sdist and, from it, the wheel (the PyPI path, so MANIFEST.in
and setup.py's data copy are both exercised); install the wheel alone into a fresh venv (no
system site-packages; its dependencies resolved from PyPI); then, in an empty directory far from
the checkout, use it as a gateway maintainer would: the CLI (schema, corpus export, mock via
capture, analyze, fixtures, check --junit --known-gaps), the Python API and the pytest plugin,
against the test gateway.  Slow: it downloads and installs the dependencies."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import venv
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from gatewaylens.capture.launch import free_port
from gatewaylens.datafiles import SHIPPED
from tests.support.capture import wait_http

ROOT = Path(__file__).resolve().parents[1]
TESTGW = ROOT / "tests" / "capture_testgw.py"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def sh(cmd: list[str], cwd: Path, env: dict[str, str], ok: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if ok:
        assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-2000:])
    return r


def test_wheel_installed_alone_works_from_an_empty_directory(tmp_path: Path) -> None:
    # --- build: sdist, then the wheel from the sdist --------------------------------------------
    tools = tmp_path / "tools"
    venv.create(tools, with_pip=True)
    base_env = {k: v for k, v in os.environ.items()
                if k not in ("PYTHONPATH", "VIRTUAL_ENV", "GATEWAYLENS_HOME", "GATEWAYLENS_TOOLS")}
    sh([str(tools / "bin" / "python"), "-m", "pip", "install", "-q", "build"], tmp_path, base_env)
    dist = tmp_path / "dist"
    sh([str(tools / "bin" / "python"), "-m", "build", "--outdir", str(dist), str(ROOT)], tmp_path, base_env)
    (wheel,) = dist.glob("gatewaylens-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for rel in SHIPPED:
        assert any(n == f"gatewaylens/data/{rel}" or n.startswith(f"gatewaylens/data/{rel}/") for n in names), rel
    assert "gatewaylens/data/corpus.d/reported-bugs.json" in names
    assert "gatewaylens/analyze/templates/report.md.j2" in names and "gatewaylens/py.typed" in names
    assert not any("node_modules" in n for n in names)
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[pytest11]\ngatewaylens = gatewaylens.pytest_plugin" in entry_points

    # --- install the wheel alone into a fresh venv --------------------------------------------------
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=False)
    bin_dir = env_dir / "bin"
    py = str(bin_dir / "python")
    sh([py, "-m", "pip", "install", "-q", str(wheel), "pytest"], tmp_path, base_env)
    work = tmp_path / "empty"
    work.mkdir()
    env = {**base_env, "PATH": f"{bin_dir}{os.pathsep}{base_env.get('PATH', '')}", "HOME": str(tmp_path / "home"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}

    where = sh([py, "-c", "import gatewaylens, gatewaylens.datafiles as d; print(gatewaylens.__file__); "
                          "print(d.checkout_root()); print(d.data_path('docker-compose.yml')); print(d.gateways_home())"],
               work, env).stdout.split()
    assert where[0].startswith(str(env_dir)) and where[1] == "None"
    assert where[2].startswith(str(env_dir)) and Path(where[2]).is_file()
    assert where[3] == str(tmp_path / "cache" / "gatewaylens")  # not site-packages, not the checkout

    # --- CLI: gateways, schema, corpus export --------------------------------------------------------
    listing = sh(["gatewaylens", "gateways", "list"], work, env).stdout.splitlines()
    assert listing[0] == f"gateways home: {tmp_path / 'cache' / 'gatewaylens'}"
    assert "litellm: LiteLLM not installed: run gatewaylens gateways install litellm" in listing
    listed = sh(["gatewaylens", "schema"], work, env).stdout
    assert listed.split()[0] == "corpus" and "known-gaps" in listed
    assert json.loads(sh(["gatewaylens", "schema", "run"], work, env).stdout)["properties"]["format_version"]
    sh(["gatewaylens", "corpus", "export", "corpus.json", "--cases", "basic-chat,basic-chat-stream,basic-messages"],
       work, env)
    assert [c["id"] for c in json.loads((work / "corpus.json").read_text())["cases"]] == [
        "basic-chat", "basic-chat-stream", "basic-messages"]

    # --- mock (in capture) -> capture -> analyze -> fixtures -> check, against the test gateway ---
    mock_port = free_port()
    gw_port = free_port()
    gw = subprocess.Popen([py, str(TESTGW), "--name", "wgw", "--port", str(gw_port),
                           "--upstream", f"http://127.0.0.1:{mock_port}/ch/wgw"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_http(f"http://127.0.0.1:{gw_port}/health")
        gw_url = f"http://127.0.0.1:{gw_port}"
        r = sh(["capture", "--gateway", f"wgw={gw_url}", "--mock", f"http://127.0.0.1:{mock_port}",
                "--out", "runs/ci", "--json"], work, env)
        summary = json.loads(r.stdout)
        assert summary["counts"]["ok"] == 3, summary
        sh(["analyze", "runs/ci"], work, env)
        assert (work / "runs" / "ci" / "report.md").is_file() and (work / "runs" / "ci" / "report.html").is_file()
        sh(["analyze", "fixtures", "runs/ci", "--out", "fixtures"], work, env)
        (work / "gaps.yaml").write_text("format_version: 1\ngaps:\n"
                                        "  - {gateway: wgw, route: chat->openai, direction: request, path: model, "
                                        "kind: changed}\n")
        r = sh(["gatewaylens", "analyze", "check", "runs/ci", "--fixtures", "fixtures", "--known-gaps", "gaps.yaml",
                "--junit", "reports/junit.xml", "--summary", "reports/summary.md"], work, env)
        # the gap never fails (model changed is info): the ratchet reports it as no longer seen
        assert "IMPROVED known-gaps/wgw[chat->openai]" in r.stdout
        root = ET.parse(work / "reports" / "junit.xml").getroot()
        names = {c.get("name") for c in root.findall("testsuite/testcase")}
        assert root.tag == "testsuites" and root.find("testsuite/testcase/failure") is None
        assert {"wgw/basic-chat[openai]", "wgw/basic-chat-stream[openai]", "wgw/basic-messages[openai]",
                "known-gaps/wgw[chat->openai]"} <= names, names
        assert (work / "reports" / "summary.md").read_text().startswith("## gatewaylens check: ✅")

        # capture without --corpus and no corpus.json here: the shipped corpus
        other = work / "elsewhere"
        other.mkdir()
        r = sh(["capture", "--gateway", f"wgw={gw_url}", "--mock", f"http://127.0.0.1:{mock_port}",
                "--cases", "basic-responses", "--out", "run2", "--json"], other, env)
        assert json.loads(r.stdout)["counts"]["ok"] == 1
        assert "gatewaylens/data/corpus.json" in json.loads((other / "run2" / "run.json").read_text())["corpus_path"]

        # an exchanges file from a newer gatewaylens: one line, exit 2
        bad = work / "runs" / "bad"
        bad.mkdir()
        (bad / "run.json").write_text((work / "runs" / "ci" / "run.json").read_text())
        lines = (work / "runs" / "ci" / "exchanges.jsonl").read_text().splitlines()
        (bad / "exchanges.jsonl").write_text(lines[0].replace('"format_version":1', '"format_version":4', 1) + "\n")
        r = sh(["analyze", "runs/bad"], work, env, ok=False)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
        assert "format_version 4; this gatewaylens reads exchanges.jsonl format_version 1" in r.stderr

        # --- the Python API -------------------------------------------------------------------
        api = textwrap.dedent(f"""
            import asyncio, gatewaylens
            async def main():
                async with gatewaylens.MockServer(port={mock_port}) as mock:  # where the test gateway points
                    assert mock.channel("wgw") == "http://127.0.0.1:{mock_port}/ch/wgw"
                    return await gatewaylens.capture(["wgw={gw_url}"], mock_url=mock.url, corpus="corpus.json",
                                                     cases=["basic-chat"])
            ex = [e for e in asyncio.run(main()) if e.status != "unsupported"]
            a = gatewaylens.analyze(ex)
            assert [s.gateway for s in a.scores] == ["wgw"], a.scores
            assert gatewaylens.check(ex, "fixtures").compared == 1
            gatewaylens.assert_translation(ex, no_errors=True, fixture="fixtures")
            print("api ok", len(gatewaylens.shipped_corpus().cases))
        """)
        assert sh([py, "-c", api], work, env).stdout.startswith("api ok ")
    finally:
        gw.kill()
        gw.wait()

    # --- the pytest plugin, from a project that only installed the wheel ---------------------------
    proj = tmp_path / "project"
    (proj / "tests").mkdir(parents=True)
    (proj / "tests" / "test_gw.py").write_text(textwrap.dedent(f"""
        import subprocess, time, httpx, pytest

        @pytest.fixture
        def gateway(gatewaylens_mock):
            port = {free_port()}
            proc = subprocess.Popen([{py!r}, {str(TESTGW)!r}, "--name", "pgw", "--port", str(port),
                                     "--upstream", gatewaylens_mock.channel_url])
            for _ in range(200):
                try:
                    httpx.get(f"http://127.0.0.1:{{port}}/health", trust_env=False)
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{{port}}"
            proc.kill()
            proc.wait()

        @pytest.mark.gatewaylens(gateway="pgw")
        def test_tools(gatewaylens_capture, assert_translation, gateway):
            exchanges = gatewaylens_capture.sync(gateway, cases=["tools-chat-required"])
            assert_translation(exchanges, no_errors=True, fixture=True)
    """))
    r = sh([str(bin_dir / "pytest"), "-q", "--gatewaylens-update", "-p", "no:cacheprovider"], proj, env)
    assert "1 passed" in r.stdout
    assert (proj / "tests" / "gatewaylens" / "fixtures" / "pgw" / "tools-chat-required.openai.json").is_file()
    r = sh([str(bin_dir / "pytest"), "-p", "no:cacheprovider"], proj, env)
    assert "1 passed" in r.stdout and "plugins: gatewaylens-0.1.0" in r.stdout
    assert str(ROOT) not in sh([py, "-c", "import sys; print(sys.path)"], proj, env).stdout
