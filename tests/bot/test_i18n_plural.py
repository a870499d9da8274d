"""Plural messages: one form per plural category of each language, chosen by count."""

from __future__ import annotations

import string

import pytest

from bot.i18n import MissingMessageError, domains, gettext, ngettext, plural_forms
from bot.settings import SUPPORTED_LANGUAGES

#: Plural forms of each language in gettext (CLDR: English one/other, the others other only).
FORMS_PER_LANGUAGE = {"en": 2, "vi": 1, "km": 1, "lo": 1}


def _fields(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conversion in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("domain", domains())
def test_plural_messages_have_every_form(domain: str) -> None:
    english = plural_forms("en", domain)
    for language in SUPPORTED_LANGUAGES:
        forms = plural_forms(language, domain)
        assert set(forms) == set(english), f"{domain}.po for {language}: plural ids differ from English"
        for message_id, texts in forms.items():
            assert len(texts) == FORMS_PER_LANGUAGE[language], f"{language} {message_id} has {len(texts)} forms"
            for text in texts:
                assert _fields(text) == _fields(english[message_id][-1]), f"{language} {message_id}: {text!r}"


def test_english_cancel_confirm_singular_and_plural() -> None:
    one = gettext("assess.cancel_confirm", "en", count=1)
    three = gettext("assess.cancel_confirm", "en", count=3)

    assert "Your 1 answer will be deleted" in one
    assert "Your 3 answers will be deleted" in three


def test_ngettext_formats_count() -> None:
    assert ngettext("assess.cancel_confirm", 2, "vi").startswith("Huỷ bài tự đánh giá? 2 câu trả lời")


def test_ngettext_unknown_id_raises() -> None:
    with pytest.raises(MissingMessageError, match=r"core\.greeting"):
        ngettext("core.greeting", 1, "en")
