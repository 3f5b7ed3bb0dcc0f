"""report.html in a real browser: Debian's Chromium (scripts/install-browser.sh) driven by Playwright.

The page under test comes from a real run: LiteLLM and Portkey, launched by capture against the
mock, over a handful of corpus cases, analyzed by the ``analyze`` command. What the tests expect of
the gateways comes from recorded traffic and source, cited where used.  Each test saves a
screenshot into its temp dir (and into ``$GWL_SCREENSHOTS`` when that is set, e.g. as CI artifacts).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gatewaylens.analyze.pipeline import analyze_run
from gatewaylens.analyze.synthetic import write_synthetic_run
from gatewaylens.capture.launch import PROJECT_ROOT, free_port
from tests.gateway_checks import skip_unless_launchable
from tests.support.report import page_data

CHROMIUM = Path("/usr/bin/chromium")
CASES = "basic-chat,basic-chat-stream,basic-messages,sampling-chat-full,tools-chat-required"
GATEWAYS = ("litellm", "portkey")

pytestmark = pytest.mark.slow  # launches LiteLLM and Portkey


def _browser_or_skip() -> Any:
    if not CHROMIUM.exists():
        pytest.skip(f"chromium not installed at {CHROMIUM} (scripts/install-browser.sh installs Debian's package; needs root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is in the dev extra
        pytest.skip("playwright not installed (pip install -e '.[dev]')")
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _browser_or_skip()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM))
        yield b
        b.close()


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real small run: capture (the CLI) launches LiteLLM and Portkey with its own mock, then analyze."""
    for name in GATEWAYS:
        skip_unless_launchable(name)
    out = tmp_path_factory.mktemp("browser") / "run"
    mock = f"http://127.0.0.1:{free_port()}"
    cap = subprocess.run(
        [sys.executable, "-m", "gatewaylens", "capture", "--launch", "--gateways", ",".join(GATEWAYS),
         "--cases", CASES, "--mock", mock, "--out", str(out)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert cap.returncode == 0, cap.stdout[-2000:] + cap.stderr[-2000:]
    ana = subprocess.run([sys.executable, "-m", "gatewaylens", "analyze", str(out)], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert ana.returncode == 0, ana.stderr[-2000:]
    assert (out / "report.html").is_file()
    return out


class Page:
    """One open report page, with every request it made and every script error it raised."""

    def __init__(self, browser: Any, html: Path, shots: Path) -> None:
        self.url = html.resolve().as_uri()
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.shots = shots

        def route(r: Any) -> None:
            # Only the report file itself may load; anything else (a CDN script, a font, a beacon)
            # is recorded and refused, so a page that needs the network shows it by failing too.
            if r.request.url == self.url:
                r.continue_()
            else:
                self.blocked.append(r.request.url)
                r.abort()

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.on("request", lambda req: self.requests.append(req.url))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.goto(self.url)
        self.page.wait_for_selector("#heatmap button")
        self.data = page_data(html.read_text(encoding="utf-8"))

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
        extra = os.environ.get("GWL_SCREENSHOTS")
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(extra) / path.name)
        return path

    def cell(self, case: str, gateway: str, upstream: str) -> Any:
        return self.page.locator(
            f'#heatmap button[data-case="{case}"][data-gateway="{gateway}"][data-upstream="{upstream}"]')

    def texts(self, selector: str) -> list[str]:
        return [t.strip() for t in self.page.locator(selector).all_inner_texts()]

    def close(self) -> None:
        assert not self.errors, self.errors
        self.context.close()


@pytest.fixture
def page(browser: Any, real_run: Path, tmp_path: Path) -> Iterator[Page]:
    p = Page(browser, real_run / "report.html", tmp_path)
    yield p
    p.close()


def test_loads_from_disk_without_any_other_request(page: Page) -> None:
    assert page.requests == [page.url] and page.blocked == []
    heads = page.texts("#heatmap thead th[title]")
    assert heads == [f"{g} → {u}" for g in GATEWAYS for u in ("openai", "anthropic")]
    cases = page.texts("#heatmap tbody th")
    assert cases == sorted(CASES.split(","))
    rows = page.data["rows"]
    assert isinstance(rows, list)
    assert page.page.locator("#count").inner_text() == f"{len(rows)} of {len(rows)} rows"
    page.shot("report-top")


def test_heatmap_cell_opens_side_by_side_with_the_finding_highlighted(page: Page) -> None:
    # Portkey 1.15.2 drops `seed` on chat -> anthropic: its anthropic chatComplete config has no key
    # for it (build/start-server.js @portkey-ai/gateway 1.15.2; tests/data/ground_truth/expectations.json).
    cell = page.cell("sampling-chat-full", "portkey", "anthropic")
    assert "sev-error" in (cell.get_attribute("class") or "")
    cell.click()
    detail = page.page.locator("#detail")
    assert detail.is_visible()
    assert detail.locator("h3").inner_text() == "sampling-chat-full · portkey → anthropic"
    seed = detail.locator('.p-cq .ln.hl-error[data-path="seed"]')
    assert seed.count() == 1 and seed.inner_text().strip() == '"seed": 90210,'
    title = seed.get_attribute("title") or ""
    assert title.startswith("error dropped:") and "seed" in title
    seed.hover()  # the finding is the line's tooltip
    assert detail.locator('.p-uq .ln[data-path="seed"]').count() == 0  # it never reached the upstream
    assert detail.locator('.p-uq .ln[data-path="messages"]').count() == 1
    assert "seed" in page.texts("#findings tbody tr td:nth-child(4)")
    assert "sel" in (cell.get_attribute("class") or "")
    page.shot("side-by-side-seed")


def test_gateway_filter_keeps_only_that_gateway(page: Page) -> None:
    page.page.select_option("#f-gateway", "litellm")
    rows = page.data["rows"]
    assert isinstance(rows, list)
    n = sum(1 for r in rows if r["g"] == "litellm")
    assert page.page.locator("#count").inner_text() == f"{n} of {len(rows)} rows"
    assert {h.split(" → ")[0] for h in page.texts("#heatmap thead th[title]")} == {"litellm"}
    gateways = page.texts("#rows tbody tr td:nth-child(3)")
    assert len(gateways) == min(n, 100) and set(gateways) == {"litellm"}
    assert set(page.texts("#behaviours tbody tr td:nth-child(2)")) == {"litellm"}
    page.page.select_option("#f-upstream", "anthropic")
    assert page.texts("#heatmap thead th[title]") == ["litellm → anthropic"]
    page.shot("filter-litellm-anthropic")


def test_what_does_portkey_drop_is_one_click(page: Page) -> None:
    behaviours = page.data["behaviours"]
    assert isinstance(behaviours, list)
    dropped = [b for b in behaviours if "portkey" in b["p"] and b["k"] == "dropped"]
    button = page.page.locator('#gateways tr[data-gateway="portkey"] button[data-k="dropped"]')
    assert button.inner_text() == str(len(dropped))
    button.click()
    assert page.page.locator("#f-gateway").input_value() == "portkey"
    assert page.page.locator("#f-kind").input_value() == "dropped"
    rows = page.page.locator("#behaviours tbody tr")
    assert rows.count() == min(len(dropped), 100)
    assert set(page.texts("#behaviours tbody tr td:nth-child(2)")) == {"portkey"}
    assert set(page.texts("#behaviours tbody tr td:nth-child(6)")) == {"dropped"}
    # the errors come first: seed, presence_penalty, frequency_penalty on chat->anthropic (see above)
    first = [t.split("\t") for t in rows.all_inner_texts()[:3]]
    assert {(c[1], c[2], c[4]) for c in first} == {
        ("portkey", "chat->anthropic", p) for p in ("seed", "presence_penalty", "frequency_penalty")}
    assert all(c[0] == "error" for c in first)
    # the errors button answers "what does it get wrong" the same way
    page.page.locator('#gateways tr[data-gateway="portkey"] button[data-sev="error"]').click()
    assert set(page.texts("#behaviours tbody tr td:nth-child(1)")) == {"error"}
    page.shot("portkey-drops")


def test_details_are_collapsible(page: Page) -> None:
    page.cell("sampling-chat-full", "portkey", "anthropic").click()
    info = page.page.locator("#info-findings")
    assert info.count() == 1 and info.get_attribute("open") is None
    body = info.locator("table")
    assert not body.is_visible()
    n = int(re.match(r"(\d+)", info.locator("summary").inner_text()).group(1))  # type: ignore[union-attr]
    assert n > 0
    info.locator("summary").click()
    assert body.is_visible() and body.locator("tbody tr").count() == n
    assert set(t.split("\t")[0] for t in body.locator("tbody tr").all_inner_texts()) == {"info"}
    headers = page.page.locator("#headers")
    assert not headers.locator(".p-hq").is_visible()
    headers.locator("summary").click()
    # the client's key reached Portkey's upstream as x-api-key (redacted, same fingerprint)
    assert headers.locator('.p-hu .ln[data-path="x-api-key"]').is_visible()
    info.locator("summary").click()
    assert not body.is_visible()
    page.shot("details-open")


def test_stream_timeline_has_both_sides_with_relative_times(page: Page) -> None:
    page.cell("basic-chat-stream", "litellm", "openai").click()
    stream = page.page.locator("#stream")
    assert stream.is_visible() and stream.get_attribute("open") is not None
    up, client = stream.locator("tr.tu"), stream.locator("tr.tc")
    assert up.count() >= 5 and client.count() >= 5  # role, 5 deltas, finish, [DONE] on each side
    times = [float(t.lstrip("+")) for t in stream.locator("tr.tu td.t").all_inner_texts()]
    assert times == sorted(times) and times[0] >= 0
    assert "[DONE]" in up.last.inner_text() and "[DONE]" in client.last.inner_text()
    page.shot("stream-timeline")


def test_text_search_filters_rows_and_heatmap(page: Page) -> None:
    page.page.fill("#f-text", "seed")
    page.page.wait_for_function("document.getElementById('count').textContent.split(' ')[0] !== document.getElementById('count').textContent.split(' ')[2]")
    assert page.texts("#heatmap tbody th") == ["sampling-chat-full"]
    rows = page.data["rows"]
    assert isinstance(rows, list)
    expect = [r for r in rows if any("seed" in (f[2] or "") or "seed" in (f[3] or "") or "seed" in f[5].lower()
                                     for f in r["f"])]
    assert page.page.locator("#rows tbody tr").count() == len(expect) > 0


def test_long_lists_render_lazily(browser: Any, tmp_path: Path) -> None:
    """Paging only (no gateway claim): a synthetic run with more rows than one page."""
    run = write_synthetic_run(tmp_path / "run", 360, cases=90)
    analyze_run(run)
    p = Page(browser, run / "report.html", tmp_path)
    rows = p.data["rows"]
    assert isinstance(rows, list) and len(rows) > 200
    assert p.page.locator("#rows tbody tr").count() == 100
    more = p.page.locator("#x-more button")
    assert more.inner_text() == "show 100 more"
    more.click()
    assert p.page.locator("#rows tbody tr").count() == 200
    p.close()


def test_data_is_embedded_once_as_json(real_run: Path) -> None:
    html = (real_run / "report.html").read_text(encoding="utf-8")
    data = page_data(html)
    findings = json.loads((real_run / "findings.json").read_text(encoding="utf-8"))
    assert {b["id"] for b in data["behaviours"]} == {b["id"] for b in findings["behaviours"]}  # type: ignore[union-attr]
