"""Reports checked as a reader meets them: links that lead nowhere, and a real browser's view.

`broken_links` reads a page's href and src attributes (HTML and inline SVG alike): a file://
or relative link must name an existing file, an embedded image must be a real PNG. `render`
loads the page in headless Chromium and asks the page itself, once loaded, which images failed
and how large each drawing came out; without Chromium (CI may not have it) the test is skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import shutil
import subprocess
import tempfile
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Runs inside the page once it has loaded; the result lands in an attribute that --dump-dom prints.
PROBE = """<script>window.addEventListener('load', () => {
  const broken = [...document.images]
    .filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt || i.src);
  const drawings = [...document.querySelectorAll('svg')].map(s => {
    const box = s.getBoundingClientRect(); return [Math.round(box.width), Math.round(box.height)]; });
  const probe = {broken, drawings, images: document.images.length};
  document.body.setAttribute('data-probe', JSON.stringify(probe));
});</script>"""


def chromium() -> str:
    """The Chromium binary, or skip the test saying why."""
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not found:
        pytest.skip("Chromium is not installed: the pages are not rendered in a browser here")
    return found


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("href", "src") and value]


def links(page: Path) -> list[str]:
    parser = _Links()
    parser.feed(page.read_text())
    return parser.found


def broken_links(page: Path) -> list[str]:
    """Every link of `page` that leads nowhere: a missing file, or an embedded image that is no PNG."""
    broken = []
    for link in links(page):
        target = urlparse(link)
        if link.startswith("data:image/png;base64,"):
            try:
                ok = base64.b64decode(link.split(",", 1)[1], validate=True).startswith(PNG_SIGNATURE)
            except binascii.Error:
                ok = False
            if not ok:
                broken.append(link[:40])
        elif target.scheme == "file":
            if not Path(unquote(target.path)).exists():
                broken.append(link)
        elif (
            not target.scheme
            and not link.startswith("#")
            and not (page.parent / unquote(target.path)).exists()
        ):
            broken.append(link)
    return broken


def _run(*args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    return done.stdout


def render(page: Path, screenshot: Path | None = None) -> dict:
    """Load `page` in Chromium: {"broken": images that did not load, "drawings": [width, height] of
    each SVG, "images": how many}; optionally save what it looks like as a PNG."""
    with tempfile.TemporaryDirectory() as folder:
        # A copy with the probe, whose relative links still resolve against the page's folder.
        probed = Path(folder) / page.name
        text = page.read_text().replace("<head>", f"<head><base href='{page.parent.as_uri()}/'>", 1)
        probed.write_text(text.replace("</body>", f"{PROBE}</body>"))
        dom = _run("--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, f"Chromium did not load {page}: {dom[:500]}"
    if screenshot is not None:
        _run("--window-size=1400,1800", f"--screenshot={screenshot}", page.as_uri())
    return json.loads(unescape(found.group(1)))
