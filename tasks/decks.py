"""Flyte Decks that also land among the reports in the offline store, where a local run can open them."""

from __future__ import annotations

import re

from flytekit import Deck

from income.platform.files import write_text_atomically
from income.platform.report_html import page
from income.platform.settings import reports_uri


def show(title: str, html: str) -> None:
    """Add a Deck to the running task and save the same HTML as <reports>/<title>.html."""
    Deck(title, html)
    name = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    write_text_atomically(f"{reports_uri()}/{name}.html", page(title, html))
