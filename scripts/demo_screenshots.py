"""The README's screenshots of the demo: seeds the demo into a throwaway SQLite file,
serves it on a free port of 127.0.0.1, and photographs a few organizations' billing tabs
in Debian's Chromium (scripts/browser-deps installs it).

    .venv/bin/python scripts/demo_screenshots.py            # writes docs/images/*.png
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from tabkeeper.api.app import create_app
from tabkeeper.clock import SystemClock
from tabkeeper.db.engine import make_engine
from tabkeeper.db.migrate import upgrade
from tabkeeper.demo import seed_demo
from tabkeeper.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
SHOTS = {
    # organization code, member → file name
    ("harbor", "hana"): "demo-active.png",
    ("copper", "cole"): "demo-past-due.png",
    ("harbor", "mia"): "demo-plain-member.png",
}
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/demo.db"
        engine = make_engine(url)
        upgrade(engine)
        settings = Settings(database_url=url)
        report = seed_demo(engine, settings, SystemClock().now())
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings, engine), host="127.0.0.1", port=port,
                           log_level="warning", lifespan="off")
        )  # fmt: skip
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        IMAGES.mkdir(parents=True, exist_ok=True)
        entries = {(entry.organization, entry.member): entry for entry in report.entries}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=ARGS
            )
            for key, name in SHOTS.items():
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                page.goto(entries[key].portal_url(base))
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(IMAGES / name), full_page=True)
                page.close()
                print(f"{IMAGES / name}: {key[0]} as {key[1]}")
            browser.close()
        server.should_exit = True
    return 0


if __name__ == "__main__":
    sys.exit(main())
