"""Questionnaire file schema (pydantic) and the resolved questionnaire used at run time.

A questionnaire file (``knowledge_base/assessments/<id>.yml``) is validated against
:class:`QuestionnaireFile`. The loader then resolves includes and answer scales into
:class:`Questionnaire` objects, which the flow and the scoring read.
"""

from __future__ import annotations

import dataclasses
import enum
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from bot.settings import SUPPORTED_LANGUAGES

#: Question ids are short because they travel in button commands (``assess:a:<qid>:<aid>``).
QUESTION_ID_PATTERN = r"^[a-z][a-z0-9_]{0,11}$"
ANSWER_ID_PATTERN = r"^[a-z0-9]{1,6}$"
QUESTIONNAIRE_ID_PATTERN = r"^[a-z][a-z0-9_]{0,15}$"
ARTICLE_ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"

#: Answer buttons must fit one line of a phone screen; counted in visible characters
#: (combining marks such as Khmer and Lao vowel signs do not count).
BUTTON_TEXT_MAX_CHARS = 28
#: A question message stays far below Telegram's 4096-character text limit.
QUESTION_TEXT_MAX_CHARS = 600
ACTION_TEXT_MAX_CHARS = 400
#: The heaviest weight an adviser may give one question.
MAX_WEIGHT = 10.0

#: Sectors a questionnaire may be written for; ``general`` is the cross-sector check.
SECTORS = ("textiles", "footwear", "furniture", "handicraft", "food", "general")


class Dimension(enum.StrEnum):
    """An area of the assessment; each has its own score and an axis on the chart."""

    MATERIALS = "materials"
    ENERGY = "energy"
    WATER = "water"
    WASTE_PACKAGING = "waste_packaging"
    CHEMICALS = "chemicals"
    HEALTH_SAFETY = "health_safety"
    DESIGN_INNOVATION = "design_innovation"
    MARKET_COMMUNICATION = "market_communication"


def visible_length(text: str) -> int:
    """Return the number of characters of ``text`` that take space on screen."""
    return sum(1 for char in text if unicodedata.category(char) not in ("Mn", "Me", "Cf"))


def _check_texts(value: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(value) - set(SUPPORTED_LANGUAGES))
    if unknown:
        raise ValueError(f"unknown language code(s) {', '.join(unknown)}: use only {', '.join(SUPPORTED_LANGUAGES)}")
    missing = [language for language in SUPPORTED_LANGUAGES if not str(value.get(language) or "").strip()]
    if missing:
        raise ValueError(f"missing translation {', '.join(missing)}: every text needs {', '.join(SUPPORTED_LANGUAGES)}")
    return {language: unicodedata.normalize("NFC", value[language].strip()) for language in SUPPORTED_LANGUAGES}


def _check_button_texts(value: dict[str, str]) -> dict[str, str]:
    too_long = [
        f"{language} has {visible_length(text)}"
        for language, text in value.items()
        if visible_length(text) > BUTTON_TEXT_MAX_CHARS
    ]
    if too_long:
        raise ValueError(
            f"button text too long ({'; '.join(too_long)} characters, maximum {BUTTON_TEXT_MAX_CHARS}): "
            "keep answers to a few words and put detail in the question text"
        )
    return value


def _max_length(limit: int) -> AfterValidator:
    def check(value: dict[str, str]) -> dict[str, str]:
        too_long = [language for language, text in value.items() if len(text) > limit]
        if too_long:
            raise ValueError(f"text too long in {', '.join(too_long)} (maximum {limit} characters)")
        return value

    return AfterValidator(check)


#: A text in every supported language.
Texts = Annotated[dict[str, str], AfterValidator(_check_texts)]
ButtonTexts = Annotated[dict[str, str], AfterValidator(_check_texts), AfterValidator(_check_button_texts)]
QuestionTexts = Annotated[dict[str, str], AfterValidator(_check_texts), _max_length(QUESTION_TEXT_MAX_CHARS)]
ActionTexts = Annotated[dict[str, str], AfterValidator(_check_texts), _max_length(ACTION_TEXT_MAX_CHARS)]

QuestionId = Annotated[str, StringConstraints(pattern=QUESTION_ID_PATTERN)]
AnswerId = Annotated[str, StringConstraints(pattern=ANSWER_ID_PATTERN)]
QuestionnaireId = Annotated[str, StringConstraints(pattern=QUESTIONNAIRE_ID_PATTERN)]
ArticleId = Annotated[str, StringConstraints(pattern=ARTICLE_ID_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnswerSpec(_Strict):
    """One answer button: ``points`` for scored questions, or ``not_applicable``."""

    id: AnswerId
    text: ButtonTexts
    points: float | None = Field(default=None, ge=0)
    not_applicable: bool = False

    @model_validator(mode="after")
    def _points_or_not_applicable(self) -> AnswerSpec:
        if self.not_applicable and self.points is not None:
            raise ValueError("a not-applicable answer takes no points: remove 'points' or 'not_applicable'")
        return self


class Condition(_Strict):
    """A branch: true when the earlier ``question`` was answered with one of ``answers``."""

    question: QuestionId
    answers: list[AnswerId] = Field(min_length=1)


class QuestionSpec(_Strict):
    """One question as written in a file; answers come inline or from a named scale."""

    id: QuestionId
    dimension: Dimension
    text: QuestionTexts
    scored: bool = True
    weight: float = Field(default=1.0, gt=0, le=MAX_WEIGHT)
    answers: list[AnswerSpec] | None = None
    scale: str | None = None
    not_applicable: bool = False
    show_if: Condition | None = None
    skip_if: Condition | None = None
    action: ActionTexts | None = None
    articles: list[ArticleId] = Field(default_factory=list)

    @model_validator(mode="after")
    def _answers_or_scale(self) -> QuestionSpec:
        if (self.answers is None) == (self.scale is None):
            raise ValueError("give either 'answers' or 'scale' (the name of a scale under 'scales'), not both or neither")
        if self.scored and self.action is None:
            raise ValueError("a scored question needs 'action': the advice shown when this question costs points")
        if self.scored and not self.articles:
            raise ValueError("a scored question needs 'articles': at least one knowledge-base article id for the advice")
        if self.show_if is not None and self.skip_if is not None:
            raise ValueError("give at most one of 'show_if' and 'skip_if'")
        return self


class QuestionnaireFile(_Strict):
    """One YAML file: a questionnaire owners can choose, or a module others include."""

    id: QuestionnaireId
    version: int = Field(ge=1)
    kind: Literal["questionnaire", "module"] = "questionnaire"
    sector: Literal["textiles", "footwear", "furniture", "handicraft", "food", "general"] | None = None
    order: int = 100
    name: ButtonTexts | None = None
    include: list[QuestionnaireId] = Field(default_factory=list)
    scales: dict[str, list[AnswerSpec]] = Field(default_factory=dict)
    not_applicable_text: ButtonTexts | None = None
    questions: list[QuestionSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _questionnaire_fields(self) -> QuestionnaireFile:
        if self.kind == "questionnaire" and (self.name is None or self.sector is None):
            raise ValueError("a questionnaire needs 'name' (its sector button) and 'sector'")
        return self


@dataclasses.dataclass(frozen=True)
class Origin:
    """Source location of a resolved object: file, line and field path."""

    path: str
    line: int | None
    field: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line or '?'}: {self.field}"


@dataclasses.dataclass(frozen=True)
class Answer:
    """A resolved answer of one question."""

    id: str
    text: Mapping[str, str]
    points: float | None
    not_applicable: bool
    origin: Origin


@dataclasses.dataclass(frozen=True)
class Question:
    """A resolved question, in the order it is asked within its questionnaire."""

    id: str
    dimension: Dimension
    text: Mapping[str, str]
    scored: bool
    weight: float
    answers: tuple[Answer, ...]
    show_if: Condition | None
    skip_if: Condition | None
    action: Mapping[str, str] | None
    articles: tuple[str, ...]
    origin: Origin

    @property
    def max_points(self) -> float:
        """Return the highest points any answer gives (0 for unscored questions)."""
        return max((answer.points or 0.0 for answer in self.answers if not answer.not_applicable), default=0.0)

    def answer(self, answer_id: str | None) -> Answer | None:
        """Return the answer with ``answer_id``, or None."""
        return next((answer for answer in self.answers if answer.id == answer_id), None)


@dataclasses.dataclass(frozen=True)
class Questionnaire:
    """A questionnaire an owner can run: its own questions after those it includes."""

    id: str
    version: str
    sector: str
    order: int
    name: Mapping[str, str]
    questions: tuple[Question, ...]
    path: str

    def question(self, question_id: str | None) -> Question | None:
        """Return the question with ``question_id``, or None when it is not in this run."""
        return next((question for question in self.questions if question.id == question_id), None)

    def index(self, question_id: str) -> int:
        """Return the position of ``question_id`` in the run (ValueError when absent)."""
        for position, question in enumerate(self.questions):
            if question.id == question_id:
                return position
        raise ValueError(f"question {question_id!r} is not in questionnaire {self.id!r}")

    @property
    def dimensions(self) -> list[Dimension]:
        """Return the dimensions this questionnaire scores, in the fixed chart order."""
        used = {question.dimension for question in self.questions if question.scored}
        return [dimension for dimension in Dimension if dimension in used]
