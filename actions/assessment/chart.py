"""Radar chart of the dimension scores, rendered to PNG with matplotlib's Agg canvas.

The figure is built with :class:`matplotlib.figure.Figure` rather than pyplot, so no
global state is shared between the action server's worker threads. Khmer and Lao
labels need the Noto Sans Khmer and Noto Sans Lao fonts from the
``justmytype-intl-sea`` package. Without it those labels would render as empty boxes,
so :func:`script_supported` tells the caller to fall back to English labels.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import cast

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.projections.polar import PolarAxes
from matplotlib.text import Text

logger = logging.getLogger(__name__)

FIGURE_SIZE_INCHES = (6.4, 6.4)
#: 6.4 in x 120 dpi = 768 px: sharp on phones, about 100 KB per chart.
DPI = 120
#: Package that ships the Khmer and Lao fonts, and their files inside it.
FONT_PACKAGE = "justmytype_intl_sea"
FONT_FILES = {
    "km": "fonts/ofl/notosanskhmer/NotoSansKhmer[wdth,wght].ttf",
    "lo": "fonts/ofl/notosanslao/NotoSansLao[wdth,wght].ttf",
}
#: Font families tried in order for each character (matplotlib font fallback).
FONT_FAMILIES = ["DejaVu Sans", "Noto Sans Khmer", "Noto Sans Lao"]
CURRENT_COLOUR = "#2e7d32"
PREVIOUS_COLOUR = "#9e9e9e"
RING_VALUES = (25, 50, 75, 100)
CHART_FILE_MODE = 0o644
#: Distance of the axis labels from the centre, in score units: the outer ring is at 100.
LABEL_RADIUS = 108
#: A label whose direction from the centre is within about 6 degrees of vertical or
#: horizontal is centred on that line (sin 6 degrees is about 0.1).
ALIGN_TOLERANCE = 0.1
#: Space kept between the chart with its labels and the figure's edge, title or legend, in pixels.
LAYOUT_MARGIN_PIXELS = 12
#: Layout passes. Labels sit outside the ring, so their room changes a little with the
#: ring's size, and each pass cuts the remaining error to about a tenth.
LAYOUT_PASSES = 4


@functools.cache
def _registered_scripts() -> frozenset[str]:
    """Register the Khmer and Lao fonts with matplotlib once; return the languages they cover."""
    covered = set()
    for language, relative in FONT_FILES.items():
        try:
            path = Path(str(resources.files(FONT_PACKAGE) / relative))
        except ModuleNotFoundError:
            logger.warning("font package %s is not installed: Khmer and Lao chart labels fall back to English", FONT_PACKAGE)
            break
        if not path.exists():
            logger.warning("font file %s is missing: %s chart labels fall back to English", path, language)
            continue
        font_manager.fontManager.addfont(str(path))
        covered.add(language)
    return frozenset(covered)


def script_supported(language: str) -> bool:
    """Return True when chart labels can be drawn in ``language``'s script."""
    if language in FONT_FILES:
        return language in _registered_scripts()
    return True


def _label_alignment(angle: float) -> tuple[str, str]:
    """Return (horizontal, vertical) text alignment that keeps a label at ``angle`` off the ring.

    The label is anchored at its edge nearest to the centre, so it grows away from the
    chart: a label on the right starts at its anchor, one on the left ends there, one at
    the top sits on it and one at the bottom hangs from it. The first axis is at the top
    and the others follow clockwise, so the label's x direction is sin(angle) and its y
    direction is cos(angle).
    """
    across, up = math.sin(angle), math.cos(angle)
    horizontal = "center" if abs(across) < ALIGN_TOLERANCE else ("left" if across > 0 else "right")
    vertical = "center" if abs(up) < ALIGN_TOLERANCE else ("bottom" if up > 0 else "top")
    return horizontal, vertical


def radar_figure(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    previous: Sequence[float | None] | None = None,
    legend: tuple[str, str] | None = None,
) -> Figure:
    """Build the radar chart of ``values`` (0-100, None drawn as 0) as a matplotlib figure.

    ``previous`` draws an earlier run as a dashed line; ``legend`` names (current,
    previous). Axis labels are placed outside the outer ring (see :func:`_label_alignment`).
    """
    if len(labels) != len(values) or len(labels) < 3:
        raise ValueError(
            f"a radar chart needs at least 3 labels and one value per label, got {len(labels)} labels and {len(values)} values"
        )
    _registered_scripts()
    font = font_manager.FontProperties(family=FONT_FAMILIES, size=9)
    title_font = font_manager.FontProperties(family=FONT_FAMILIES, size=13)

    count = len(labels)
    angles = [2 * math.pi * index / count for index in range(count)]
    closed_angles = [*angles, angles[0]]

    figure = Figure(figsize=FIGURE_SIZE_INCHES, dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    axes = cast(PolarAxes, figure.add_subplot(projection="polar"))
    # The first dimension at the top, the others clockwise.
    axes.set_theta_offset(math.pi / 2)
    axes.set_theta_direction(-1)
    axes.set_ylim(0, 100)
    axes.set_yticks(list(RING_VALUES))
    axes.set_yticklabels([str(value) for value in RING_VALUES], fontproperties=font, color="#757575")
    # Ring values between the first two axes, where no label or spoke is drawn.
    axes.set_rlabel_position(180 / count)
    axes.set_xticks(angles)
    axes.set_xticklabels([])
    axes.grid(color="#e0e0e0")
    for angle, label in zip(angles, labels, strict=True):
        horizontal, vertical = _label_alignment(angle)
        axes.text(
            angle,
            LABEL_RADIUS,
            label,
            fontproperties=font,
            horizontalalignment=horizontal,
            verticalalignment=vertical,
            multialignment="center",
            clip_on=False,
        )

    if previous is not None:
        previous_values = [value or 0.0 for value in previous]
        axes.plot(
            closed_angles,
            [*previous_values, previous_values[0]],
            color=PREVIOUS_COLOUR,
            linestyle="--",
            linewidth=1.5,
            label=legend[1] if legend else None,
        )
    current = [value or 0.0 for value in values]
    axes.plot(closed_angles, [*current, current[0]], color=CURRENT_COLOUR, linewidth=2, label=legend[0] if legend else None)
    axes.fill(closed_angles, [*current, current[0]], color=CURRENT_COLOUR, alpha=0.25)

    title_text = figure.suptitle(title, fontproperties=title_font)
    legend_box = None
    if legend is not None and previous is not None:
        legend_box = figure.legend(loc="lower center", ncols=2, prop=font, frameon=False)
    _fit_axes(figure, axes, canvas.get_renderer(), title_text, legend_box)
    return figure


def _fit_axes(figure: Figure, axes: PolarAxes, renderer: RendererAgg, title: Text, legend: Legend | None) -> None:
    """Make the chart as large as fits, with its labels, between the title and the legend.

    ``tight_layout`` (matplotlib 3.11) left about 100 pixels free on each side of this
    chart, so the size is computed here. The labels' overflow beyond the axes box is
    measured on each side, and the square box gets what remains of the figure.
    """
    figure_width, figure_height = figure.bbox.width, figure.bbox.height
    left, right = LAYOUT_MARGIN_PIXELS, figure_width - LAYOUT_MARGIN_PIXELS
    top = title.get_window_extent(renderer).y0 - LAYOUT_MARGIN_PIXELS
    bottom = LAYOUT_MARGIN_PIXELS
    if legend is not None:
        bottom += legend.get_window_extent(renderer).y1
    for _ in range(LAYOUT_PASSES):
        box = axes.get_window_extent(renderer)
        extent = axes.get_tightbbox(renderer)
        if extent is None:
            return
        overflow_left, overflow_right = box.x0 - extent.x0, extent.x1 - box.x1
        overflow_bottom, overflow_top = box.y0 - extent.y0, extent.y1 - box.y1
        free_width = right - left - overflow_left - overflow_right
        free_height = top - bottom - overflow_bottom - overflow_top
        side = min(free_width, free_height)
        x0 = left + overflow_left + (free_width - side) / 2
        y0 = bottom + overflow_bottom + (free_height - side) / 2
        axes.set_position((x0 / figure_width, y0 / figure_height, side / figure_width, side / figure_height))


def render_radar(
    path: Path,
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    previous: Sequence[float | None] | None = None,
    legend: tuple[str, str] | None = None,
) -> Path:
    """Draw the radar chart of :func:`radar_figure` and write it to ``path`` as PNG.

    The file is written to a temporary name first and then renamed, so a reader never
    sees half a file. Returns ``path``.
    """
    figure = radar_figure(labels, values, title=title, previous=previous, legend=legend)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".png", dir=path.parent)
    os.close(handle)
    try:
        figure.savefig(temporary, format="png")
        os.chmod(temporary, CHART_FILE_MODE)  # mkstemp creates 0600; channels may run as another user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
