"""Small questionnaire files for loader and scoring tests, written as YAML text."""

from __future__ import annotations

import textwrap
from pathlib import Path

ARTICLE = "energy-efficiency-workshops"


def texts(label: str) -> str:
    """Return an inline mapping with ``label`` in all four languages."""
    return f'{{en: "{label}", vi: "{label} vi", km: "{label} km", lo: "{label} lo"}}'


def answer(answer_id: str, points: float | None = None, *, not_applicable: bool = False, text: str | None = None) -> str:
    lines = [f'      - id: "{answer_id}"']
    if points is not None:
        lines.append(f"        points: {points}")
    if not_applicable:
        lines.append("        not_applicable: true")
    lines.append(f"        text: {text or texts('Answer ' + answer_id)}")
    return "\n".join(lines)


def question(
    question_id: str,
    dimension: str = "energy",
    *,
    answers: list[str] | None = None,
    extra: str = "",
    scored: bool = True,
    text: str | None = None,
    articles: str = f"[{ARTICLE}]",
) -> str:
    """Return one question block of a ``questions:`` list."""
    lines = [
        f"  - id: {question_id}",
        f"    dimension: {dimension}",
        f"    text: {text or texts('Question ' + question_id)}",
    ]
    if not scored:
        lines.append("    scored: false")
    if extra:
        lines.extend("    " + line for line in textwrap.dedent(extra).strip().splitlines())
    if "scale:" not in extra:
        lines.append("    answers:")
        lines.extend(answers or [answer("a", 0), answer("b", 1), answer("c", 2)])
    if scored:
        lines.append(f"    action: {texts('Action ' + question_id)}")
        lines.append(f"    articles: {articles}")
    return "\n".join(lines)


def questionnaire(questionnaire_id: str, questions: list[str], *, header: str = "", kind: str = "questionnaire") -> str:
    """Return a whole file: header fields, then ``questions``."""
    lines = [f"id: {questionnaire_id}", "version: 1"]
    if kind == "module":
        lines.append("kind: module")
    else:
        lines.append("sector: textiles")
        lines.append(f"name: {texts('Sample')}")
    if header:
        lines.extend(textwrap.dedent(header).strip().splitlines())
    lines.append("questions:")
    lines.extend(questions)
    return "\n".join(lines) + "\n"


def write(folder: Path, name: str, content: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yml"
    path.write_text(content, encoding="utf-8")
    return path


def line_of(content: str, marker: str, *, after: str | None = None) -> int:
    """Return the 1-based line of the first line containing ``marker`` (after the line containing ``after``)."""
    lines = content.splitlines()
    start = 0
    if after is not None:
        start = next(index for index, line in enumerate(lines) if after in line) + 1
    for index in range(start, len(lines)):
        if marker in lines[index]:
            return index + 1
    raise AssertionError(f"{marker!r} not in the sample")


def content_dir(folder: Path, article_ids: list[str]) -> Path:
    """Create a knowledge-base content folder with empty English articles."""
    english = folder / "en"
    english.mkdir(parents=True, exist_ok=True)
    for article_id in article_ids:
        (english / f"{article_id}.md").write_text(f"---\nid: {article_id}\ntitle: {article_id}\n---\n", encoding="utf-8")
    return folder
