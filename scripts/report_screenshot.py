"""Screenshots of a report.html, taken by Debian's Chromium through Playwright (what `make sample-report` calls).

    python scripts/report_screenshot.py RUN_DIR/report.html docs/
        -> docs/report.png        the top of the page: what each gateway does, filters, heatmap
           docs/report-detail.png one heatmap cell opened: side-by-side bodies, the finding highlighted

The detail shot opens ``--cell CASE,GATEWAY,UPSTREAM`` (default: Portkey dropping ``seed`` on the
way to Anthropic) or, when the run has no such cell, the first cell whose worst finding is an error.
Exit 2 with one line when the file or the browser is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
DEFAULT_CELL = "sampling-chat-full,portkey,anthropic"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("html", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--cell", default=DEFAULT_CELL, help="CASE,GATEWAY,UPSTREAM of the detail shot")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1000)
    args = ap.parse_args(argv)
    if not args.html.is_file():
        print(f"report-screenshot: {args.html}: no such file (run analyze first)", file=sys.stderr)
        return 2
    if not CHROMIUM.exists():
        print(f"report-screenshot: {CHROMIUM} missing (run scripts/install-browser.sh)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    args.out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        # the page must need nothing but itself: refuse every other request
        url = args.html.resolve().as_uri()
        page.route("**/*", lambda r: r.continue_() if r.request.url == url else r.abort())
        page.goto(url)
        page.wait_for_selector("#heatmap button")
        top = args.out_dir / "report.png"
        page.screenshot(path=str(top))
        case, gateway, upstream = ([*args.cell.split(","), "", ""])[:3]
        cell = page.locator(f'#heatmap button[data-case="{case}"][data-gateway="{gateway}"][data-upstream="{upstream}"]')
        if cell.count() == 0:
            cell = page.locator("#heatmap button.sev-error")
        cell.first.click()
        page.wait_for_selector("#detail.open")
        detail = args.out_dir / "report-detail.png"
        page.screenshot(path=str(detail))
        browser.close()
    print(f"screenshots: {top}, {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
