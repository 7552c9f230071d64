"""The layered SVG drawing: layers by longest path, skipping edges routed around boxes, escaping, links."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from income.platform.svg_graph import (
    LAYER_GAP,
    MARGIN,
    MAX_WIDTH,
    MIN_WIDTH,
    Graph,
    Node,
    layers,
    layout,
    render,
)

SVG = "{http://www.w3.org/2000/svg}"


def chain_with_a_shortcut() -> Graph:
    """a → b → c → d, and a → d skipping b and c."""
    nodes = [Node(n, f"node {n}", ("one line",)) for n in "abcd"]
    return Graph(nodes, [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")])


def test_a_node_sits_one_layer_after_its_furthest_predecessor():
    assert layers(chain_with_a_shortcut()) == {"a": 0, "b": 1, "c": 2, "d": 3}


def test_an_edge_that_skips_layers_passes_beside_the_boxes_it_skips():
    boxes, routes, width, height = layout(chain_with_a_shortcut())
    shortcut = next(r for r in routes if r[0] == "a" and r[-1] == "d")
    assert shortcut == ["a", "a->d#1", "a->d#2", "d"]
    for placeholder, node in (("a->d#1", "b"), ("a->d#2", "c")):
        (_, y0, _, h0), (_, y1, _, h1) = boxes[placeholder], boxes[node]
        assert y0 + h0 <= y1 or y1 + h1 <= y0  # one above the other, never overlapping
    assert width == pytest.approx(sum(boxes[n][2] for n in "abcd") + 3 * LAYER_GAP + 2 * MARGIN)
    assert all(y >= 0 and y + h <= height for _, y, _, h in boxes.values())
    assert all(boxes[n][0] + boxes[n][2] + LAYER_GAP == boxes[m][0] for n, m in ("ab", "bc", "cd"))


def test_a_layer_is_as_wide_as_its_longest_line_within_bounds():
    nodes = [Node("a", "a"), Node("b", "b", ("a rather long line of text",)), Node("c", "c", ("z" * 300,))]
    graph = Graph(nodes, [("a", "b"), ("b", "c")])
    boxes, _, _, _ = layout(graph)
    assert boxes["a"][2] == MIN_WIDTH and boxes["c"][2] == MAX_WIDTH
    assert MIN_WIDTH < boxes["b"][2] < MAX_WIDTH


def test_layers_are_ordered_to_avoid_crossings():
    # Given in crossing order: a feeds d and b feeds c, but c is listed before d.
    nodes = [Node("a", "a"), Node("b", "b"), Node("c", "c"), Node("d", "d")]
    boxes, _, _, _ = layout(Graph(nodes, [("a", "d"), ("b", "c")]))
    assert (boxes["a"][1] < boxes["b"][1]) == (boxes["d"][1] < boxes["c"][1])


def test_cycles_and_unknown_nodes_are_refused():
    with pytest.raises(ValueError, match="cycle"):
        layers(Graph([Node("a", "a"), Node("b", "b")], [("a", "b"), ("b", "a")]))
    with pytest.raises(ValueError, match=r"not in the graph: \['ghost'\]"):
        layers(Graph([Node("a", "a")], [("a", "ghost")]))


def test_render_is_valid_svg_with_escaped_text_links_and_cut_lines():
    long = "x" * 200
    graph = Graph(
        [
            Node("in", "<raw> & more", (long,), href="file:///tmp/a b.csv"),
            Node("out", "model", ("v1",), tone="gone"),
        ],
        [("in", "out")],
    )
    root = ET.fromstring(str(render(graph)))  # parses: well-formed, everything escaped
    assert root.tag == f"{SVG}svg"
    links = root.findall(f".//{SVG}a")
    assert [a.get("href") for a in links] == ["file:///tmp/a b.csv"]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "<raw> & more" in texts
    cut = next(t for t in texts if t.startswith("xxx"))
    assert cut.endswith("…") and len(cut) < 40
    assert long in root.find(f".//{SVG}title").text  # the whole line stays in the tooltip
    assert len(root.findall(f".//{SVG}path[@marker-end]")) == 1
    dashed = [r for r in root.iter(f"{SVG}rect") if r.get("stroke-dasharray")]
    assert len(dashed) == 1  # the node whose thing is gone
