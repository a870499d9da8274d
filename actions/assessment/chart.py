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
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.projections.polar import PolarAxes

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


def render_radar(
    path: Path,
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    previous: Sequence[float | None] | None = None,
    legend: tuple[str, str] | None = None,
) -> Path:
    """Draw a radar chart of ``values`` (0-100, None drawn as 0) and write it to ``path`` as PNG.

    ``previous`` draws an earlier run as a dashed line; ``legend`` names (current,
    previous). The file is written to a temporary name first and then renamed, so a
    reader never sees half a file. Returns ``path``.
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
    FigureCanvasAgg(figure)
    axes = cast(PolarAxes, figure.add_subplot(projection="polar"))
    # The first dimension at the top, the others clockwise.
    axes.set_theta_offset(math.pi / 2)
    axes.set_theta_direction(-1)
    axes.set_ylim(0, 100)
    axes.set_yticks(list(RING_VALUES))
    axes.set_yticklabels([str(value) for value in RING_VALUES], fontproperties=font, color="#757575")
    axes.set_xticks(angles)
    axes.set_xticklabels(list(labels), fontproperties=font)
    axes.tick_params(axis="x", pad=14)
    axes.grid(color="#e0e0e0")

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

    axes.set_title(title, fontproperties=title_font, pad=24)
    if legend is not None and previous is not None:
        axes.legend(loc="lower right", bbox_to_anchor=(1.15, -0.12), prop=font, frameon=False)
    figure.tight_layout()

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
