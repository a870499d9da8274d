"""Content check: missing sources and translations, broken related links, wrong translations lists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.settings import get_settings
from knowledge_base.content import ContentError, ContentValidationError, load_articles, reference_problems


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert re.search(old, text, re.MULTILINE), f"{old!r} not in {path}"
    path.write_text(re.sub(old, new, text, count=1, flags=re.MULTILINE), encoding="utf-8")


def test_fixture_content_passes(content_dir: Path) -> None:
    assert reference_problems(load_articles(content_dir)) == []


def test_missing_sources_fails(content_dir: Path) -> None:
    edit(content_dir / "en" / "fsc-wood.md", r"^sources:", "old_sources:")
    with pytest.raises(ContentValidationError) as caught:
        load_articles(content_dir)
    assert [(error.path.name, error.field) for error in caught.value.errors] == [("fsc-wood.md", "sources")]


def test_missing_translations_metadata_fails(content_dir: Path) -> None:
    edit(content_dir / "vi" / "energy-saving.md", r"^translations:.*$", "")
    with pytest.raises(ContentValidationError) as caught:
        load_articles(content_dir)
    error: ContentError = caught.value.errors[0]
    assert error.field == "translations"
    assert "missing" in error.message


def test_broken_related_link_fails(content_dir: Path) -> None:
    edit(content_dir / "km" / "energy-saving.md", r"^translations:", "related: [no-such-article]\ntranslations:")
    problems = reference_problems(load_articles(content_dir))
    assert len(problems) == 1
    assert "'related': 'no-such-article'" in problems[0]
    assert "km" in problems[0]


def test_translation_naming_missing_version_fails(content_dir: Path) -> None:
    edit(content_dir / "en" / "fsc-wood.md", r"^translations:.*$", "translations: [lo]")
    problems = reference_problems(load_articles(content_dir))
    assert len(problems) == 1
    assert "no lo version of 'fsc-wood'" in problems[0]


def test_translation_list_omitting_existing_version_fails(content_dir: Path) -> None:
    edit(content_dir / "lo" / "plastic-packaging.md", r"^translations:.*$", "translations: [en]")
    problems = reference_problems(load_articles(content_dir))
    assert len(problems) == 1
    assert "omits existing version(s) ['vi']" in problems[0]


def test_real_content_passes_the_check() -> None:
    articles = load_articles(get_settings().kb_content_dir)
    assert len(articles) > 0
    assert reference_problems(articles) == []
