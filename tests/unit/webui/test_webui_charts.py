"""Inline SVG charts: points scaled into the plot, text escaped, an empty series still renders."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from services.webui.charts import HEIGHT, PAD_BOTTOM, PAD_LEFT, PAD_TOP, WIDTH, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def test_points_span_the_plot_area() -> None:
    svg = line_chart("cpu", [1_000, 2_000, 3_000], [0.0, 2.0, 1.0], lambda v: f"{v:g}")
    root = ET.fromstring(svg)  # well-formed XML
    points = [tuple(map(float, p.split(","))) for p in root.find(f"{SVG}polyline").get("points").split()]
    assert len(points) == 3
    assert points[0][0] == PAD_LEFT and points[-1][0] == pytest.approx(WIDTH - 12)
    assert points[1][1] == PAD_TOP                       # the maximum touches the top
    assert points[0][1] == HEIGHT - PAD_BOTTOM           # zero sits on the axis
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "2" in labels and "2s" in labels              # the scale's top and the time span


def test_text_is_escaped() -> None:
    svg = line_chart('<script>"x"</script>', [0], [1.0], lambda v: "<b>")
    assert "<script>" not in svg and "<b>" not in svg
    assert "&lt;script&gt;" in svg
    ET.fromstring(svg)


def test_empty_series_says_so() -> None:
    svg = line_chart("memory", [], [], str)
    assert "no samples" in svg and "<polyline" not in svg


def test_a_flat_zero_series_does_not_divide_by_zero() -> None:
    svg = line_chart("cpu", [5, 5], [0.0, 0.0], str)
    assert re.search(r'points="[0-9.]+,[0-9.]+ [0-9.]+,[0-9.]+"', svg)


def test_mismatched_series_is_refused() -> None:
    with pytest.raises(ValueError, match="one value per time"):
        line_chart("cpu", [1, 2], [1.0], str)
