"""Take screenshots/web.png: `vik-tui web` on the built-in demo, in a real Chromium.

    python scripts/web_screenshot.py [--out screenshots/web.png] [--settle 12]

The demo project is written to a temporary directory and run detached (`run -d`); once its
agents have streamed for `--settle` seconds, `vik-tui web` serves it and Playwright (over
Debian's chromium) logs in with `?token=` and photographs the page. Everything is stopped at
the end.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from browser import VIK, WebServer, launch, wait_screen  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots" / "web.png")
    parser.add_argument("--settle", type=float, default=12.0)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from vik_tui.config.loader import load_workflow
    from vik_tui.demo.project import write_demo_project
    from vik_tui.engine.service.paths import Layout

    with tempfile.TemporaryDirectory() as tmp:
        workflow = write_demo_project(Path(tmp) / "demo", speed=0.5)
        result = load_workflow(workflow)
        assert result.workflow is not None
        layout = Layout.for_workflow(result.workflow, result.path)
        subprocess.run([*VIK, "run", "-d", str(workflow)], check=True, timeout=120)
        web = None
        try:
            time.sleep(args.settle)
            web = WebServer.start(workflow)
            token = layout.api_token_file.read_text().strip()
            with sync_playwright() as playwright:
                browser = launch(playwright)
                try:
                    page = browser.new_context(viewport={"width": 1400, "height": 760}).new_page()
                    page.goto(f"{web.url}?token={token}")
                    wait_screen(page, "attached to pid", "DEMO-1", "? help")
                    page.keyboard.press("j")
                    time.sleep(2.0)  # the pane fills and a few lines stream in
                    page.screenshot(path=str(args.out))
                finally:
                    browser.close()
        finally:
            if web is not None:
                web.stop()
            subprocess.run([*VIK, "stop", str(workflow)], capture_output=True, timeout=120)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
