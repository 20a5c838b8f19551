"""Debian's chromium driven by Playwright for Python (``executable_path``: no browser download)."""

import contextlib
import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (/usr/bin/chromium)"
)


@contextlib.contextmanager
def chromium_page(artifact: str, *, full_page: bool = True):
    """A fresh page; on exit its screenshot and HTML go to ``test-artifacts/<artifact>.png/.html``.

    ``full_page=False`` shoots the viewport only (a long page such as ReDoc's takes too long whole).
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(15000)
        try:
            yield page
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{artifact}.png"), full_page=full_page)
            (ARTIFACTS / f"{artifact}.html").write_text(page.content())
            browser.close()
