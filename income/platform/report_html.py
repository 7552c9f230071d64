"""HTML building blocks for Decks and reports: every value escaped unless it is already Markup.

One renderer for every page the project writes (validation, feature tables, lineage,
training leaderboard, batch scoring, drift), so they look alike and no caller assembles
table rows by hand or forgets to escape a value.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;margin:0.6em 0}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}code{font-size:90%}"
)


class Markup(str):
    """A piece of HTML that is already safe: inserted as it is."""


def escape(value: object) -> str:
    return value if isinstance(value, Markup) else html.escape(str(value))


def code(value: object) -> Markup:
    return Markup(f"<code>{escape(value)}</code>")


def bold(value: object) -> Markup:
    return Markup(f"<b>{escape(value)}</b>")


def coloured(value: object, colour: str) -> Markup:
    return Markup(f"<span style='color:{escape(colour)}'>{escape(value)}</span>")


def heading(text: object, level: int = 3) -> Markup:
    return Markup(f"<h{level}>{escape(text)}</h{level}>")


def paragraph(*parts: object) -> Markup:
    """One paragraph of text; plain parts are escaped, Markup parts (code, bold) kept."""
    return Markup(f"<p>{''.join(escape(p) for p in parts)}</p>")


def bullets(items: Iterable[object]) -> Markup:
    return Markup(f"<ul>{''.join(f'<li>{escape(i)}</li>' for i in items)}</ul>")


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    bold_rows: Iterable[int] = (),
    empty: str = "none",
) -> Markup:
    """A table with a header row; `bold_rows` are row positions to emphasise."""
    emphasised = set(bold_rows)
    body = (
        "".join(
            f"<tr{' style=font-weight:bold' if i in emphasised else ''}>"
            + "".join(f"<td>{escape(cell)}</td>" for cell in row)
            + "</tr>"
            for i, row in enumerate(rows)
        )
        or f"<tr><td colspan='{len(headers)}'>{escape(empty)}</td></tr>"
    )
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return Markup(f"<table><tr>{head}</tr>{body}</table>")


def key_values(pairs: Iterable[tuple[object, object]]) -> Markup:
    """A two-column table: the key as a header cell, the value beside it."""
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in pairs)
    return Markup(f"<table>{rows}</table>")


def image(png_base64: str, alt: str) -> Markup:
    return Markup(
        f"<figure style='display:inline-block;margin:4px'>"
        f"<img src='data:image/png;base64,{png_base64}' alt='{escape(alt)}'/></figure>"
    )


def png_base64(fig, dpi: int = 80) -> str:
    """A matplotlib figure as base64 PNG text, to embed in a page; the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def side_by_side(*parts: object) -> Markup:
    """Parts next to each other while the page is wide enough, one under the other when not."""
    cells = "".join(f"<div>{escape(p)}</div>" for p in parts)
    return Markup(f"<div style='display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start'>{cells}</div>")


def page(title: str, body: str) -> str:
    """A complete, self-contained page (no scripts, no network)."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )
