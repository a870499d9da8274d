"""Message catalogues: every message exists in every language with the same fields."""

from __future__ import annotations

import string

import pytest

from bot.i18n import MissingMessageError, catalogue, domains, gettext, normalize_language
from bot.settings import SUPPORTED_LANGUAGES


def _fields(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conversion in string.Formatter().parse(text) if name}


def test_catalogue_domains_exist() -> None:
    assert "core" in domains()


@pytest.mark.parametrize("domain", domains())
def test_every_message_in_every_language(domain: str) -> None:
    ids = set().union(*(catalogue(language, domain).keys() for language in SUPPORTED_LANGUAGES))
    for language in SUPPORTED_LANGUAGES:
        missing = sorted(ids - catalogue(language, domain).keys())
        assert not missing, f"{domain}.po for {language} lacks {missing}"


@pytest.mark.parametrize("domain", domains())
def test_format_fields_match_english(domain: str) -> None:
    english = catalogue("en", domain)
    for language in SUPPORTED_LANGUAGES:
        for message_id, text in catalogue(language, domain).items():
            assert _fields(text) == _fields(english[message_id]), f"{language} {message_id} has fields {_fields(text)}"


def test_gettext_picks_language() -> None:
    assert gettext("core.language_set", "vi") != gettext("core.language_set", "en")
    assert gettext("core.language_set", "vi-VN") == gettext("core.language_set", "vi")


def test_gettext_unknown_id_raises() -> None:
    with pytest.raises(MissingMessageError, match=r"core\.no_such_message"):
        gettext("core.no_such_message", "en")


@pytest.mark.parametrize(("raw", "expected"), [("km", "km"), ("lo-LA", "lo"), ("fr", "en"), (None, "en"), ("VI", "vi")])
def test_normalize_language(raw: str | None, expected: str) -> None:
    assert normalize_language(raw) == expected
