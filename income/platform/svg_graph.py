"""A directed acyclic graph drawn as SVG, layered left to right (no Graphviz, no JavaScript).

Layers by longest path from the sources; an edge that skips layers passes through a
placeholder in each layer it crosses, so it is routed around the boxes in between instead of
across them; a few barycenter sweeps order each layer to keep crossings down. Enough for the
lineage of a run (tens of nodes), and the result is a self-contained `<svg>`: it shows in a
Flyte Deck, a file opened from disk, and an MLflow artifact alike.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from income.platform.report_html import Markup, escape

MIN_WIDTH, MAX_WIDTH = 96, 250  # a layer is as wide as its longest line needs, within these
LAYER_GAP = 26  # horizontal room for the edges between two layers
NODE_GAP = 14
MARGIN = 12
TITLE_HEIGHT = 20
LINE_HEIGHT = 15
PAD = 6
TONES = {  # fill, border: one family of colours per kind of thing
    "data": ("#eef4fb", "#4a78b0"),
    "check": ("#f4f4f4", "#777777"),
    "feast": ("#eef8ef", "#3d8b46"),
    "mlflow": ("#f0f0fb", "#5a5ab0"),
    "model": ("#fff6e8", "#c07a12"),
    "output": ("#fbeff4", "#a8457a"),
    "gone": ("#ffffff", "#bbbbbb"),  # the thing no longer exists where it was recorded
}


@dataclass(frozen=True)
class Node:
    id: str
    title: str
    lines: tuple[str, ...] = ()
    href: str = ""  # where the box links to; empty: no link
    tone: str = "data"


@dataclass(frozen=True)
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)  # (from id, to id)


def layers(graph: Graph) -> dict[str, int]:
    """Each node's layer: the length of the longest path reaching it from a source."""
    known = {n.id for n in graph.nodes}
    unknown = {end for edge in graph.edges for end in edge} - known
    if unknown:
        raise ValueError(f"edges name nodes that are not in the graph: {sorted(unknown)}")
    incoming = defaultdict(list)
    for src, dst in graph.edges:
        incoming[dst].append(src)
    layer: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(node: str) -> int:
        if node not in layer:
            if node in visiting:
                raise ValueError(f"the graph has a cycle through {node!r}")
            visiting.add(node)
            layer[node] = max((depth(s) + 1 for s in incoming[node]), default=0)
            visiting.discard(node)
        return layer[node]

    for node in graph.nodes:
        depth(node.id)
    return layer


def _height(node: Node | None) -> float:
    return 8.0 if node is None else TITLE_HEIGHT + LINE_HEIGHT * len(node.lines) + PAD


def text_width(text: str, bold: bool = False) -> float:
    """Roughly how wide `text` is at 11px in a sans-serif font (no font metrics at hand):
    digits and capitals are wider than lower case, spaces and punctuation narrower."""
    narrow = " .,:;()-/|'ijlrt"
    width = sum(7.3 if c.isdigit() or c.isupper() else 3.8 if c in narrow else 6.6 for c in text)
    return width * (1.2 if bold else 1.0)


def _needed_width(node: Node | None) -> float:
    if node is None:
        return MIN_WIDTH
    longest = max([text_width(node.title, bold=True), *(text_width(line) for line in node.lines)])
    return min(MAX_WIDTH, max(MIN_WIDTH, longest + 2 * PAD))


def _fit(text: str, width: float, bold: bool = False) -> str:
    """`text`, cut with an ellipsis where it would overflow a box `width` wide."""
    room = width - 2 * PAD + 0.01  # a box made for this very text fits it, rounding aside
    if text_width(text, bold) <= room:
        return text
    while text and text_width(text + "…", bold) > room:
        text = text[:-1]
    return text + "…"


Box = tuple[float, float, float, float]  # x, y, width, height


def layout(graph: Graph) -> tuple[dict[str, Box], list[list[str]], float, float]:
    """Boxes for nodes and placeholders, the routes of the edges (node ids), and the canvas size."""
    layer = layers(graph)
    nodes = {n.id: n for n in graph.nodes}
    columns: dict[int, list[str]] = defaultdict(list)
    for node in graph.nodes:
        columns[layer[node.id]].append(node.id)
    routes: list[list[str]] = []
    for src, dst in graph.edges:
        route = [src]
        for step in range(layer[src] + 1, layer[dst]):
            placeholder = f"{src}->{dst}#{step}"
            columns[step].append(placeholder)
            route.append(placeholder)
        routes.append([*route, dst])
    before, after = defaultdict(list), defaultdict(list)
    for route in routes:
        for a, b in zip(route, route[1:], strict=False):
            before[b].append(a)
            after[a].append(b)

    def sweep(order: list[int], neighbours: dict[str, list[str]]) -> None:
        for i in order:
            position = {v: p for c in columns.values() for p, v in enumerate(c)}
            # sorted() is stable: a node without neighbours keeps its place relative to the others
            columns[i].sort(
                key=lambda v: (
                    sum(position[u] for u in neighbours[v]) / len(neighbours[v])
                    if neighbours[v]
                    else position[v]
                )
            )

    depth = max(columns, default=-1) + 1
    for _ in range(2):
        sweep(list(range(1, depth)), before)
        sweep(list(range(depth - 2, -1, -1)), after)

    def column_height(ids: list[str]) -> float:
        return sum(_height(nodes.get(v)) for v in ids) + NODE_GAP * (len(ids) - 1)

    height = max((column_height(c) for c in columns.values()), default=0.0) + 2 * MARGIN
    widths = [max(_needed_width(nodes.get(v)) for v in columns[i]) for i in range(depth)]
    width = sum(widths) + max(depth - 1, 0) * LAYER_GAP + 2 * MARGIN
    boxes = {}
    for i, ids in columns.items():
        x = MARGIN + sum(widths[:i]) + i * LAYER_GAP
        y = (height - column_height(ids)) / 2
        for v in ids:
            boxes[v] = (x, y, widths[i], _height(nodes.get(v)))
            y += _height(nodes.get(v)) + NODE_GAP
    return boxes, routes, width, height


def _edge_path(route: list[str], boxes: dict[str, Box]) -> str:
    """Smooth curves between layers; straight through the placeholders of the layers it crosses."""
    points = []
    for k, v in enumerate(route):
        x, y, w, h = boxes[v]
        middle = y + h / 2
        if k > 0:
            points.append((x, middle))
        if k < len(route) - 1:
            points.append((x + w, middle))
    path = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
    for k, ((x0, y0), (x1, y1)) in enumerate(zip(points, points[1:], strict=False)):
        if k % 2:  # across a placeholder's column
            path += f" L{x1:.1f},{y1:.1f}"
        else:  # between two layers
            bend = (x1 - x0) / 2
            path += f" C{x0 + bend:.1f},{y0:.1f} {x1 - bend:.1f},{y1:.1f} {x1:.1f},{y1:.1f}"
    return path


def _node_svg(node: Node, x: float, y: float, w: float, h: float) -> str:
    fill, border = TONES.get(node.tone, TONES["data"])
    dash = " stroke-dasharray='4 3'" if node.tone == "gone" else ""
    link_style = " fill='#1a55a8' text-decoration='underline'" if node.href else ""
    text = [
        f"<text x='{x + PAD:.1f}' y='{y + 14:.1f}' font-weight='600'{link_style}>"
        f"{escape(_fit(node.title, w, bold=True))}</text>"
    ]
    for k, line in enumerate(node.lines):
        baseline = y + TITLE_HEIGHT + LINE_HEIGHT * k + 11
        text.append(f"<text x='{x + PAD:.1f}' y='{baseline:.1f}'>{escape(_fit(line, w))}</text>")
    tooltip = escape("\n".join([node.title, *node.lines, node.href]).strip())
    box = (
        f"<g class='node' data-id='{escape(node.id)}'><title>{tooltip}</title>"
        f"<rect x='{x:.1f}' y='{y:.1f}' width='{w:.1f}' height='{h:.1f}' rx='5' "
        f"fill='{fill}' stroke='{border}'{dash}/>{''.join(text)}</g>"
    )
    if node.href:
        return f"<a href='{escape(node.href)}' target='_top'>{box}</a>"
    return box


def render(graph: Graph) -> Markup:
    """The graph as an inline `<svg>` that scales down to the width of the page, to 3/4 at most
    (beyond that the text gets too small to read: put it in a box that scrolls)."""
    boxes, routes, width, height = layout(graph)
    edges = "".join(
        f"<path d='{_edge_path(r, boxes)}' fill='none' stroke='#888' marker-end='url(#arrow)'/>"
        for r in routes
    )
    nodes = "".join(_node_svg(n, *boxes[n.id]) for n in graph.nodes)
    return Markup(
        f"<svg xmlns='http://www.w3.org/2000/svg' class='graph' width='{width:.0f}' height='{height:.0f}' "
        f"viewBox='0 0 {width:.0f} {height:.0f}' "
        f"style='max-width:100%;min-width:{0.75 * width:.0f}px;height:auto' "
        "font-family='system-ui,sans-serif' font-size='11' role='img'>"
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='7' "
        "markerHeight='7' orient='auto'><path d='M0,0 L10,5 L0,10 z' fill='#888'/></marker></defs>"
        f"{edges}{nodes}</svg>"
    )
