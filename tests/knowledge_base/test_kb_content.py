"""Article loading and validation."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from knowledge_base.content import (
    ContentError,
    ContentValidationError,
    check_articles,
    load_article,
    load_articles,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REAL_CONTENT = Path(__file__).resolve().parents[2] / "knowledge_base" / "content"


def test_fixture_articles_load() -> None:
    articles = load_articles(FIXTURES / "content")
    assert len(articles) == 7
    article = next(item for item in articles if item.document_id == "plastic-packaging.en")
    assert article.title == "Using less plastic packaging"
    assert article.translations == ("vi", "lo")
    assert article.updated == datetime.date(2026, 12, 4)
    assert article.sources[0].publisher == "UNEP and TU Delft"
    assert article.body.startswith("Plastic packaging is often thrown away")
    assert len(article.source_hash) == 64


@pytest.mark.parametrize(
    ("name", "field"),
    [("missing-title.md", "title"), ("wrong-id.md", "id"), ("bad-sector.md", "sectors")],
)
def test_invalid_article_names_file_and_field(name: str, field: str) -> None:
    path = FIXTURES / "invalid" / "en" / name
    with pytest.raises(ContentError) as caught:
        load_article(path)
    assert caught.value.field == field
    assert str(path) in str(caught.value)
    assert f"field '{field}'" in str(caught.value)


def test_load_articles_lists_every_invalid_file() -> None:
    with pytest.raises(ContentValidationError) as caught:
        load_articles(FIXTURES / "invalid")
    assert len(caught.value.errors) == 3
    assert "3 invalid article file(s)" in str(caught.value)


def test_skip_invalid_logs_and_continues(caplog: pytest.LogCaptureFixture) -> None:
    assert load_articles(FIXTURES / "invalid", skip_invalid=True) == []
    assert caplog.text.count("Skipping invalid article") == 3


def test_language_must_match_folder(tmp_path: Path) -> None:
    source = (FIXTURES / "content" / "en" / "fsc-wood.md").read_text(encoding="utf-8")
    (tmp_path / "vi").mkdir()
    (tmp_path / "vi" / "fsc-wood.md").write_text(source, encoding="utf-8")
    with pytest.raises(ContentError, match="differs from the folder 'vi'"):
        load_article(tmp_path / "vi" / "fsc-wood.md")


def test_file_without_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "plain.md"
    path.write_text("Just text.\n", encoding="utf-8")
    with pytest.raises(ContentError, match="front matter"):
        load_article(path)


def test_check_articles_reports_broken_links(content_dir: Path) -> None:
    path = content_dir / "en" / "fsc-wood.md"
    text = path.read_text(encoding="utf-8").replace("translations: []", "translations: [km]\nrelated: [no-such-article]")
    path.write_text(text, encoding="utf-8")
    problems = check_articles(load_articles(content_dir))
    assert any("field 'translations': no km version of 'fsc-wood'" in problem for problem in problems)
    assert any("field 'related': 'no-such-article'" in problem for problem in problems)


def test_real_content_is_valid() -> None:
    if not any(REAL_CONTENT.glob("*/*.md")):
        pytest.skip("no articles yet")
    load_articles(REAL_CONTENT)
