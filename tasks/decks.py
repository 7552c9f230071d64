"""Flyte Decks that also land in .runtime/reports/, where a local run can open them."""

from __future__ import annotations

import re

from flytekit import Deck

from income.platform.report_html import page
from income.platform.settings import runtime_dir


def show(title: str, html: str) -> None:
    """Add a Deck to the running task and save the same HTML as .runtime/reports/<title>.html."""
    Deck(title, html)
    reports = runtime_dir() / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    (reports / f"{name}.html").write_text(page(title, html))
