"""Radar chart rendering, including Khmer and Lao labels."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from matplotlib import font_manager
from matplotlib.transforms import Bbox

from actions.assessment import chart
from actions.assessment.report import dimension_name, wrap_chart_label
from actions.assessment.schema import Dimension
from bot.i18n import gettext

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_radar_chart_written_as_png(tmp_path: Path) -> None:
    path = tmp_path / "charts" / "one.png"

    written = chart.render_radar(
        path,
        ["A", "B", "C", "D"],
        [10, 50, None, 100],
        title="Sample · 53/100",
        previous=[0, 40, 20, 90],
        legend=("now", "before"),
    )

    assert written == path
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000
    assert not list(path.parent.glob(".*")), "a temporary file was left behind"


def test_radar_chart_rejects_mismatched_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one value per label"):
        chart.render_radar(tmp_path / "bad.png", ["A", "B", "C"], [1, 2], title="bad")


@pytest.mark.parametrize(("language", "family"), [("km", "Noto Sans Khmer"), ("lo", "Noto Sans Lao")])
def test_khmer_and_lao_fonts_available(language: str, family: str) -> None:
    assert chart.script_supported(language)
    names = {entry.name for entry in font_manager.fontManager.ttflist}
    assert family in names


def test_khmer_and_lao_labels_render(tmp_path: Path) -> None:
    labels = ["វត្ថុធាតុដើម", "ថាមពល", "ວັດສະດຸ", "ພະລັງງານ"]

    path = chart.render_radar(tmp_path / "scripts.png", labels, [20, 40, 60, 80], title="ការវាយតម្លៃ · ການປະເມີນ")

    assert path.read_bytes().startswith(PNG_SIGNATURE)


def _ring_clearance(box: Bbox, centre: tuple[float, float], radius: float) -> float:
    """Return how far (pixels) the point of ``box`` nearest to ``centre`` lies outside the circle."""
    nearest_x = min(max(centre[0], box.x0), box.x1)
    nearest_y = min(max(centre[1], box.y0), box.y1)
    return math.hypot(nearest_x - centre[0], nearest_y - centre[1]) - radius


@pytest.mark.parametrize("language", ["vi", "km", "lo", "en"])
def test_labels_clear_of_ring_and_each_other(language: str) -> None:
    dimensions = [dimension.value for dimension in Dimension]
    labels = [
        f"{wrap_chart_label(dimension_name(dimension, language))}\n{index * 13}" for index, dimension in enumerate(dimensions)
    ]
    figure = chart.radar_figure(
        labels,
        [index * 13 for index in range(len(labels))],
        title=f"{dimension_name('materials', language)} · 48/100",
        previous=[50] * len(labels),
        legend=(gettext("assess.chart.now", language), gettext("assess.chart.before", language, date="01/06/2026")),
    )
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    [axes] = figure.axes
    centre = axes.transData.transform((0, 0))
    radius = math.dist(centre, axes.transData.transform((0, 100)))
    drawn = {text.get_text(): text.get_window_extent(renderer) for text in axes.texts}
    others = [figure.texts[0].get_window_extent(renderer), *(legend.get_window_extent(renderer) for legend in figure.legends)]

    assert set(drawn) == set(labels)
    for label, box in drawn.items():
        assert _ring_clearance(box, (centre[0], centre[1]), radius) > 1, f"{label!r} touches the outer ring"
        assert figure.bbox.contains(box.x0, box.y0), f"{label!r} is cut at the figure's edge"
        assert figure.bbox.contains(box.x1, box.y1), f"{label!r} is cut at the figure's edge"
        assert not any(box.overlaps(other) for other in others), f"{label!r} overlaps the title or the legend"
    boxes = list(drawn.items())
    for index, (label, box) in enumerate(boxes):
        for other_label, other in boxes[index + 1 :]:
            assert not box.overlaps(other), f"{label!r} overlaps {other_label!r}"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("An toàn lao động", "An toàn\nlao động"),
        ("Thiết kế, đổi mới", "Thiết kế,\nđổi mới"),
        ("Health & safety", "Health &\nsafety"),
        ("Năng lượng", "Năng lượng"),
    ],
)
def test_chart_label_split_balanced(name: str, expected: str) -> None:
    assert wrap_chart_label(name) == expected
