"""The report of a completed run: summary with the chart, scores by area, and first steps.

The report is two replies. The first carries the chart image and a summary short
enough for a Telegram photo caption (1024 characters). The second lists the scores by
area and the recommended actions, with one ``kb:article:<id>`` button per action.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import unicodedata
import zoneinfo
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from actions.assessment.schema import Questionnaire, visible_length
from actions.assessment.scoring import ScoreResult, compare, whole_points
from actions.reply import Reply
from bot.i18n import gettext
from bot.settings import DEFAULT_LANGUAGE, get_settings

logger = logging.getLogger(__name__)

#: Telegram's limit on a photo caption; the summary reply must stay within it.
TELEGRAM_CAPTION_MAX_CHARS = 1024
#: Article buttons show the article title cut to this many visible characters.
ARTICLE_BUTTON_MAX_CHARS = 40
#: Date format used in the report (day/month/year, as written in all three countries).
DATE_FORMAT = "%d/%m/%Y"
#: The Khmer sign for a subscript consonant joins the next letter, so a title is never cut after it.
KHMER_COENG = "\u17d2"
#: A chart axis label longer than this many visible characters is split over two lines.
CHART_LABEL_WIDTH = 14
#: Zero-width joiner and variation selectors that glue emoji sequences together.
EMOJI_JOINERS = frozenset({"\u200d", *(chr(code) for code in range(0xFE00, 0xFE10))})


@dataclasses.dataclass(frozen=True)
class PreviousRun:
    """The earlier run a report is compared with."""

    completed_at: dt.datetime
    overall: float | None
    dimensions: Mapping[str, float | None]


#: Folder under the settings' var_dir where report charts are written, one PNG per assessment.
CHART_FOLDER = "charts"


def dimension_name(dimension: str, language: str) -> str:
    """Return the short name of a dimension in ``language``."""
    return gettext(f"assess.dim.{dimension}", language)


def format_date(moment: dt.datetime, timezone: str) -> str:
    """Return ``moment`` as a local date (day/month/year) in ``timezone``."""
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo(get_settings().default_timezone)
    return moment.astimezone(zone).strftime(DATE_FORMAT)


@functools.cache
def article_title(article_id: str, language: str) -> str:
    """Return an article's title from its front matter in ``language`` (English, then the id, as fallbacks)."""
    content_dir = get_settings().kb_content_dir
    for candidate in (language, DEFAULT_LANGUAGE):
        path = content_dir / candidate / f"{article_id}.md"
        title = _front_matter_title(path)
        if title:
            return title
    return article_id


def _front_matter_title(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    try:
        data = yaml.safe_load(text[3:end])
    except yaml.YAMLError as error:
        logger.warning("invalid front matter in %s: %s", path, error)
        return None
    title = data.get("title") if isinstance(data, dict) else None
    return str(title).strip() if title else None


def shorten(text: str, limit: int) -> str:
    """Return ``text`` cut to ``limit`` visible characters with an ellipsis, never inside a letter cluster."""
    if visible_length(text) <= limit:
        return text
    kept: list[str] = []
    for char in text:
        if visible_length("".join(kept) + char) > limit - 1 and not _continues_cluster(kept, char):
            break
        kept.append(char)
    cut = "".join(kept).rstrip()
    if " " in cut[len(cut) // 2 :]:
        cut = cut[: cut.rindex(" ")].rstrip(" ,;:")
    return cut + "…"


def _continues_cluster(kept: list[str], char: str) -> bool:
    return visible_length(char) == 0 or (bool(kept) and kept[-1] == KHMER_COENG)


def _changes_text(changes: Mapping[str, int], dimensions: Sequence[str], language: str) -> str:
    parts = []
    if "overall" in changes:
        parts.append(f"{gettext('assess.report.overall_label', language)} {changes['overall']:+d}")
    for dimension in dimensions:
        change = changes.get(dimension)
        if change:
            parts.append(f"{dimension_name(dimension, language)} {change:+d}")
    if len(parts) == 1 and changes.get("overall") == 0:
        return gettext("assess.report.no_change", language)
    return ", ".join(parts)


def _score_text(value: float | None, language: str) -> str:
    return gettext("assess.report.not_scored", language) if value is None else str(whole_points(value))


def _without_symbols(text: str) -> str:
    """Return ``text`` without emoji, which the chart fonts do not have."""
    kept = "".join(char for char in text if unicodedata.category(char) not in ("So", "Sk") and char not in EMOJI_JOINERS)
    return " ".join(kept.split())


def wrap_chart_label(name: str) -> str:
    """Return ``name``, split over two lines at the space that makes the longer line shortest when it is long.

    A balanced split keeps word pairs together ("An toàn / lao động", "Design & /
    innovation") where filling the first line would leave one word on the second.
    """
    if visible_length(name) <= CHART_LABEL_WIDTH:
        return name
    spaces = [index for index, character in enumerate(name) if character == " "]
    if not spaces:
        return name
    # Of two equal splits the later one wins, so "Health & / safety" rather than "Health / & safety".
    split = min(spaces, key=lambda index: (max(visible_length(name[:index]), visible_length(name[index + 1 :])), -index))
    return f"{name[:split]}\n{name[split + 1 :]}"


def render_chart(
    path: Path,
    questionnaire: Questionnaire,
    result: ScoreResult,
    language: str,
    previous: PreviousRun | None,
    timezone: str,
) -> Path:
    """Write the radar chart of ``result`` (and ``previous``) to ``path``."""
    # Imported here because matplotlib adds about 14 MB to every action server that
    # imports it, and most never draw a chart.
    from actions.assessment import chart

    chart_language = language if chart.script_supported(language) else DEFAULT_LANGUAGE
    dimensions = list(result.dimensions)
    labels = []
    for dimension in dimensions:
        name = wrap_chart_label(dimension_name(dimension, chart_language))
        labels.append(f"{name}\n{_score_text(result.dimensions[dimension], chart_language)}")
    overall = _score_text(result.overall, chart_language)
    title = f"{_without_symbols(questionnaire.name[chart_language])} · {overall}/100"
    previous_values = [previous.dimensions.get(dimension) for dimension in dimensions] if previous else None
    legend = None
    if previous is not None:
        legend = (
            gettext("assess.chart.now", chart_language),
            gettext("assess.chart.before", chart_language, date=format_date(previous.completed_at, timezone)),
        )
    return chart.render_radar(
        path,
        labels,
        [result.dimensions[dimension] for dimension in dimensions],
        title=title,
        previous=previous_values,
        legend=legend,
    )


def build_report(
    questionnaire: Questionnaire,
    result: ScoreResult,
    language: str,
    *,
    chart_path: Path | None,
    previous: PreviousRun | None,
    timezone: str,
    menu_buttons: list[tuple[str, str]],
) -> list[Reply]:
    """Return the report replies: summary with the chart, then scores by area and first steps."""
    name = questionnaire.name[language]
    level = gettext(f"assess.level.{result.level}", language)
    summary = [gettext("assess.report.title", language, name=name)]
    if result.all_skipped:
        # No scores, chart or steps to show: only the way to start again.
        summary.append(gettext("assess.report.all_skipped", language))
        start = (gettext("assess.button.start", language), "assess:start")
        return [Reply(text="\n".join(summary), language=language, buttons=[start, *menu_buttons])]
    if result.overall is None:
        summary.append(gettext("assess.report.unscored", language))
    else:
        summary.append(gettext("assess.report.overall", language, score=whole_points(result.overall), level=level))
        summary.append(gettext(f"assess.level_note.{result.level}", language))
    if previous is not None:
        current_scores: dict[str, float | None] = {"overall": result.overall, **result.dimensions}
        previous_scores: dict[str, float | None] = {"overall": previous.overall, **previous.dimensions}
        changes = compare(current_scores, previous_scores)
        summary.append(
            gettext(
                "assess.report.compare",
                language,
                date=format_date(previous.completed_at, timezone),
                changes=_changes_text(changes, list(result.dimensions), language),
            )
        )
    else:
        summary.append(gettext("assess.report.first", language))
    summary_text = "\n".join(summary)
    if len(summary_text) > TELEGRAM_CAPTION_MAX_CHARS:
        logger.warning("report summary of %d characters exceeds the caption limit; it is cut", len(summary_text))
        summary_text = summary_text[: TELEGRAM_CAPTION_MAX_CHARS - 1] + "…"

    lines = [gettext("assess.report.dimensions", language)]
    for dimension, value in result.dimensions.items():
        lines.append(f"• {dimension_name(dimension, language)}: {_score_text(value, language)}")
    if result.skipped:
        lines.append(gettext("assess.report.skipped", language, count=result.skipped))
    lines.append("")

    buttons: list[tuple[str, str]] = []
    if result.actions:
        lines.append(gettext("assess.report.actions", language))
        for number, action in enumerate(result.actions, start=1):
            question = questionnaire.question(action.question_id)
            action_text = question.action[language] if question is not None and question.action is not None else ""
            gain = max(1, whole_points(action.overall_gain))
            lines.append(gettext("assess.report.action_line", language, number=number, action=action_text, gain=gain))
            title = shorten(f"{number}. {article_title(action.article_id, language)}", ARTICLE_BUTTON_MAX_CHARS)
            buttons.append((gettext("assess.button.article", language, title=title), f"kb:article:{action.article_id}"))
        lines.append(gettext("assess.report.read_more", language))
    else:
        lines.append(gettext("assess.report.no_actions", language))
    buttons.extend(menu_buttons)

    return [
        Reply(text=summary_text, language=language, image=str(chart_path) if chart_path else None),
        Reply(text="\n".join(lines), language=language, buttons=buttons),
    ]
