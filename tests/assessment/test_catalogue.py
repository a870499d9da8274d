"""The assess message catalogue: every message in every language, with the same placeholders."""

from __future__ import annotations

import string

from actions.assessment.schema import Dimension
from actions.assessment.scoring import LEVEL_THRESHOLDS, UNSCORED_LEVEL
from bot.i18n import catalogue
from bot.settings import SUPPORTED_LANGUAGES


def placeholders(text: str) -> set[str]:
    return {field for _literal, field, _spec, _conversion in string.Formatter().parse(text) if field}


def test_assess_catalogue_complete() -> None:
    english = catalogue("en", "assess")
    assert english, "bot/locale/en/LC_MESSAGES/assess.po is empty or missing"
    for language in SUPPORTED_LANGUAGES:
        texts = catalogue(language, "assess")
        missing = sorted(set(english) - set(texts))
        assert not missing, f"{language} lacks {missing}"
        for message_id, text in texts.items():
            assert message_id.startswith("assess."), message_id
            assert text.strip(), f"{language} {message_id} is empty"
            assert placeholders(text) == placeholders(english[message_id]), f"{language} {message_id} placeholders differ"


def test_dimension_and_level_names_exist() -> None:
    english = catalogue("en", "assess")
    for dimension in Dimension:
        assert f"assess.dim.{dimension.value}" in english
    for _bound, level in LEVEL_THRESHOLDS:
        assert f"assess.level.{level}" in english
        assert f"assess.level_note.{level}" in english
    assert f"assess.level.{UNSCORED_LEVEL}" in english


def test_control_words_do_not_overlap() -> None:
    from actions.assessment.matching import CONTROL_WORD_MESSAGES, fold

    owners: dict[str, str] = {}
    for control, message_id in CONTROL_WORD_MESSAGES.items():
        for language in SUPPORTED_LANGUAGES:
            for word in catalogue(language, "assess")[message_id].split("|"):
                folded = fold(word)
                assert owners.setdefault(folded, control) == control, f"{word!r} means both {owners[folded]} and {control}"


def test_control_words_are_no_answer_texts() -> None:
    from actions.assessment.loader import load_questionnaires
    from actions.assessment.matching import control_words, fold

    words = control_words()
    for questionnaire in load_questionnaires().values():
        for question in questionnaire.questions:
            for answer in question.answers:
                for text in answer.text.values():
                    assert fold(text) not in words, f"{question.id}:{answer.id} {text!r} is also a control word"
