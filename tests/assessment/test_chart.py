"""Radar chart rendering, including Khmer and Lao labels."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib import font_manager

from actions.assessment import chart

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
