"""Loading questionnaires from YAML, with errors that name the file, line and field.

Each ``*.yml`` file under ``knowledge_base/assessments/`` is parsed with a YAML loader
that records the line of every key and list item, validated against
:class:`~actions.assessment.schema.QuestionnaireFile`, and then resolved: included
modules come first, scales become answers, and branches, duplicate ids and article
links are checked across the whole run. Every problem found is reported at once in a
:class:`QuestionnaireError`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from actions.assessment.schema import (
    Answer,
    AnswerSpec,
    Origin,
    Question,
    Questionnaire,
    QuestionnaireFile,
    QuestionSpec,
)
from actions.reply import button_payload
from bot.settings import PROJECT_ROOT, get_settings

logger = logging.getLogger(__name__)

ASSESSMENTS_DIR = PROJECT_ROOT / "knowledge_base" / "assessments"

#: Id of the answer added to questions that set ``not_applicable: true``.
NOT_APPLICABLE_ANSWER_ID = "na"

#: Telegram's limit on callback data; answer buttons must fit even without the
#: channel's token table.
TELEGRAM_CALLBACK_DATA_MAX_BYTES = 64


@dataclasses.dataclass(frozen=True)
class QuestionnaireIssue:
    """One problem in a questionnaire file."""

    path: Path
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        location = f"{self.path}:{self.line}" if self.line else str(self.path)
        field = f" {self.field}:" if self.field else ""
        return f"{location}:{field} {self.message}"


class QuestionnaireError(ValueError):
    """One or more questionnaire files are invalid; ``issues`` lists every problem."""

    def __init__(self, issues: Sequence[QuestionnaireIssue]) -> None:
        self.issues = list(issues)
        listing = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"{len(self.issues)} problem(s) in questionnaire files:\n{listing}")


# --- YAML with line numbers ---------------------------------------------------------


class LineMap(dict[Any, Any]):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    line: int
    key_lines: dict[Any, int]


class LineList(list[Any]):
    """A YAML sequence that remembers its own line and the line of each item (1-based)."""

    line: int
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader building :class:`LineMap` and :class:`LineList` and rejecting duplicate keys."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[LineMap]:
    loader.flatten_mapping(node)
    mapping = LineMap()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    yield mapping
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"duplicate key {key!r} (first on line {mapping.key_lines[key]})",
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[LineList]:
    sequence = LineList()
    sequence.line = node.start_mark.line + 1
    sequence.item_lines = []
    yield sequence
    for item in node.value:
        sequence.append(loader.construct_object(item, deep=True))
        sequence.item_lines.append(item.start_mark.line + 1)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def parse_yaml(text: str) -> Any:
    """Parse ``text`` into :class:`LineMap`/:class:`LineList` objects (yaml.YAMLError on bad YAML)."""
    return yaml.load(text, Loader=_LineLoader)


def format_field(location: Sequence[Any]) -> str:
    """Return a pydantic location such as ``('questions', 3, 'text')`` as ``questions[3].text``."""
    field = ""
    for part in location:
        if isinstance(part, int):
            field += f"[{part}]"
        elif isinstance(part, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            field += f".{part}" if field else part
    return field


def locate(data: Any, location: Sequence[Any]) -> int | None:
    """Return the line of the deepest part of ``location`` that exists in ``data``."""
    line = getattr(data, "line", None)
    node = data
    for part in location:
        if isinstance(node, LineMap) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        elif isinstance(part, str) and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            continue  # pydantic's union tags such as 'list[AnswerSpec]' are not in the data
        else:
            break
    return line


# --- one file ------------------------------------------------------------------------


@dataclasses.dataclass
class _ParsedFile:
    path: Path
    raw: LineMap
    spec: QuestionnaireFile


def _display_path(path: Path) -> Path:
    try:
        return path.resolve().relative_to(PROJECT_ROOT)
    except ValueError:
        return path


def _parse_file(path: Path, issues: list[QuestionnaireIssue]) -> _ParsedFile | None:
    shown = _display_path(path)
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        issues.append(QuestionnaireIssue(shown, mark.line + 1 if mark else None, "", f"invalid YAML: {error.problem or error}"))
        return None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        issues.append(QuestionnaireIssue(shown, None, "", f"invalid YAML: {error}"))
        return None
    if not isinstance(raw, LineMap):
        issues.append(QuestionnaireIssue(shown, 1, "", "the file must be a YAML mapping with 'id', 'version' and 'questions'"))
        return None

    try:
        spec = QuestionnaireFile.model_validate(raw)
    except ValidationError as error:
        for detail in error.errors():
            location = detail["loc"]
            message = detail["msg"].removeprefix("Value error, ")
            if isinstance(detail.get("input"), bool):
                message += "; YAML reads unquoted yes, no, on and off as true or false, so quote the value"
            question_id = _question_id_at(raw, location)
            if question_id:
                message = f"{message} (question {question_id})"
            issues.append(QuestionnaireIssue(shown, locate(raw, location), format_field(location), message))
        return None

    if spec.id != path.stem:
        issues.append(
            QuestionnaireIssue(shown, raw.key_lines.get("id"), "id", f"id {spec.id!r} must match the file name {path.stem!r}")
        )
        return None
    return _ParsedFile(path=shown, raw=raw, spec=spec)


def _question_id_at(raw: LineMap, location: Sequence[Any]) -> str | None:
    if len(location) >= 2 and location[0] == "questions" and isinstance(location[1], int):
        questions = raw.get("questions")
        if isinstance(questions, LineList) and 0 <= location[1] < len(questions) and isinstance(questions[location[1]], dict):
            value = questions[location[1]].get("id")
            return str(value) if value is not None else None
    return None


# --- resolving a run -----------------------------------------------------------------


@dataclasses.dataclass
class _Resolver:
    files: dict[str, _ParsedFile]
    article_ids: frozenset[str] | None
    issues: list[QuestionnaireIssue]
    invalid_ids: frozenset[str] = frozenset()

    def issue(self, parsed: _ParsedFile, location: Sequence[Any], message: str) -> None:
        self.issues.append(QuestionnaireIssue(parsed.path, locate(parsed.raw, location), format_field(location), message))

    def chain(self, parsed: _ParsedFile, seen: tuple[str, ...] = ()) -> list[_ParsedFile] | None:
        """Return the files of a run in order (includes first, depth-first), or None on error."""
        if parsed.spec.id in seen:
            cycle = " -> ".join((*seen, parsed.spec.id))
            self.issue(parsed, ("include",), f"include cycle: {cycle}")
            return None
        ordered: list[_ParsedFile] = []
        for position, included_id in enumerate(parsed.spec.include):
            included = self.files.get(included_id)
            if included is None and included_id in self.invalid_ids:
                return None  # that file's own problems are already reported
            if included is None:
                self.issue(
                    parsed, ("include", position), f"included questionnaire {included_id!r} not found: expected {included_id}.yml"
                )
                return None
            sub_chain = self.chain(included, (*seen, parsed.spec.id))
            if sub_chain is None:
                return None
            ordered.extend(item for item in sub_chain if item not in ordered)
        ordered.append(parsed)
        return ordered

    def resolve(self, parsed: _ParsedFile) -> Questionnaire | None:
        chain = self.chain(parsed)
        if chain is None:
            return None
        before = len(self.issues)
        questions: list[Question] = []
        first_seen: dict[str, tuple[_ParsedFile, int]] = {}
        for member in chain:
            for index, spec in enumerate(member.spec.questions):
                location = ("questions", index)
                if spec.id in first_seen:
                    other, other_index = first_seen[spec.id]
                    other_line = locate(other.raw, ("questions", other_index, "id"))
                    self.issue(
                        member, (*location, "id"), f"duplicate question id {spec.id!r} (also in {other.path}:{other_line})"
                    )
                    continue
                first_seen[spec.id] = (member, index)
                question = self._resolve_question(member, chain, index, spec)
                if question is not None:
                    questions.append(question)

        run_ids = [question.id for question in questions]
        for question in questions:
            owner = first_seen[question.id][0]
            self._check_branch(owner, first_seen[question.id][1], question, run_ids, questions)

        if len(self.issues) > before:
            return None
        file_spec = parsed.spec
        assert file_spec.name is not None and file_spec.sector is not None  # checked by QuestionnaireFile
        return Questionnaire(
            id=file_spec.id,
            version=",".join(f"{member.spec.id}@{member.spec.version}" for member in chain),
            sector=file_spec.sector,
            order=file_spec.order,
            name=file_spec.name,
            questions=tuple(questions),
            path=str(parsed.path),
        )

    def _resolve_question(self, member: _ParsedFile, chain: list[_ParsedFile], index: int, spec: QuestionSpec) -> Question | None:
        location: tuple[Any, ...] = ("questions", index)
        before = len(self.issues)
        answers: list[Answer] = []
        if spec.scale is not None:
            found = self._find_scale(spec.scale, member, chain)
            if found is None:
                self.issue(
                    member, (*location, "scale"), f"scale {spec.scale!r} not found under 'scales' of this file or an included one"
                )
                return None
            owner, specs = found
            for position, answer in enumerate(specs):
                answers.append(self._answer(answer, owner, ("scales", spec.scale, position)))
        else:
            for position, answer in enumerate(spec.answers or []):
                answers.append(self._answer(answer, member, (*location, "answers", position)))

        if spec.not_applicable:
            text = next((item.spec.not_applicable_text for item in reversed(chain) if item.spec.not_applicable_text), None)
            if text is None:
                self.issue(
                    member,
                    (*location, "not_applicable"),
                    "'not_applicable: true' needs 'not_applicable_text' in this file or an included one",
                )
            else:
                origin = Origin(
                    str(member.path),
                    locate(member.raw, (*location, "not_applicable")),
                    format_field((*location, "not_applicable")),
                )
                answers.append(Answer(id=NOT_APPLICABLE_ANSWER_ID, text=text, points=None, not_applicable=True, origin=origin))

        self._check_answers(member, location, spec, answers)
        if len(self.issues) > before:
            return None
        return Question(
            id=spec.id,
            dimension=spec.dimension,
            text=spec.text,
            scored=spec.scored,
            weight=spec.weight,
            answers=tuple(answers),
            show_if=spec.show_if,
            skip_if=spec.skip_if,
            action=spec.action,
            articles=tuple(spec.articles),
            origin=Origin(str(member.path), locate(member.raw, location), format_field(location)),
        )

    @staticmethod
    def _find_scale(name: str, member: _ParsedFile, chain: list[_ParsedFile]) -> tuple[_ParsedFile, list[AnswerSpec]] | None:
        for item in [member, *reversed(chain)]:
            if name in item.spec.scales:
                return item, item.spec.scales[name]
        return None

    @staticmethod
    def _answer(spec: AnswerSpec, owner: _ParsedFile, location: tuple[Any, ...]) -> Answer:
        origin = Origin(str(owner.path), locate(owner.raw, location), format_field(location))
        return Answer(id=spec.id, text=spec.text, points=spec.points, not_applicable=spec.not_applicable, origin=origin)

    def _check_answers(self, member: _ParsedFile, location: tuple[Any, ...], spec: QuestionSpec, answers: list[Answer]) -> None:
        def report(answer: Answer, message: str) -> None:
            self.issues.append(
                QuestionnaireIssue(
                    Path(answer.origin.path), answer.origin.line, answer.origin.field, f"{message} (question {spec.id})"
                )
            )

        seen: set[str] = set()
        for answer in answers:
            if answer.id in seen:
                report(answer, f"duplicate answer id {answer.id!r}")
            seen.add(answer.id)
            payload = button_payload(f"assess:a:{spec.id}:{answer.id}")
            if len(payload.encode()) > TELEGRAM_CALLBACK_DATA_MAX_BYTES:
                report(answer, f"button payload {payload!r} exceeds {TELEGRAM_CALLBACK_DATA_MAX_BYTES} bytes: shorten the ids")
            if spec.scored and not answer.not_applicable and answer.points is None:
                report(answer, "missing 'points' on an answer of a scored question")
            if not spec.scored and answer.points is not None:
                report(answer, "an unscored question ('scored: false') takes no points: remove 'points'")

        choices = [answer for answer in answers if not answer.not_applicable]
        if len(choices) < 2:
            self.issue(member, location, f"question {spec.id} needs at least two answers besides 'not applicable'")
        elif spec.scored and max(answer.points or 0.0 for answer in choices) <= 0:
            self.issue(member, location, f"question {spec.id} is scored but no answer gives points above 0")

        if self.article_ids is not None:
            for position, article_id in enumerate(spec.articles):
                if article_id not in self.article_ids:
                    self.issue(
                        member,
                        (*location, "articles", position),
                        f"unknown article id {article_id!r}: no such file in the knowledge base",
                    )

    def _check_branch(
        self, member: _ParsedFile, index: int, question: Question, run_ids: list[str], questions: list[Question]
    ) -> None:
        for key in ("show_if", "skip_if"):
            condition = getattr(question, key)
            if condition is None:
                continue
            location = ("questions", index, key)
            target_id = condition.question
            if target_id not in run_ids:
                self.issue(
                    member, (*location, "question"), f"broken branch: question {target_id!r} does not exist in this questionnaire"
                )
                continue
            if run_ids.index(target_id) >= run_ids.index(question.id):
                self.issue(
                    member, (*location, "question"), f"broken branch: question {target_id!r} is not asked before {question.id!r}"
                )
                continue
            target = questions[run_ids.index(target_id)]
            for position, answer_id in enumerate(condition.answers):
                if target.answer(answer_id) is None:
                    known = ", ".join(answer.id for answer in target.answers)
                    self.issue(
                        member,
                        (*location, "answers", position),
                        f"broken branch: question {target_id!r} has no answer {answer_id!r} (answers: {known})",
                    )


def article_ids_in(content_dir: Path) -> frozenset[str] | None:
    """Return the article ids in ``content_dir/en``, or None when that folder does not exist."""
    english = content_dir / "en"
    if not english.is_dir():
        return None
    return frozenset(path.stem for path in english.glob("*.md"))


def load_questionnaires(directory: Path = ASSESSMENTS_DIR, content_dir: Path | None = None) -> dict[str, Questionnaire]:
    """Load, validate and resolve every questionnaire in ``directory``.

    Returns the questionnaires owners can choose (``kind: questionnaire``) by id, in
    their display order. Raises :class:`QuestionnaireError` listing every problem.
    ``content_dir`` is the knowledge-base content folder used to check article ids
    (default: the configured one; the check is skipped when its ``en`` folder is absent).
    """
    issues: list[QuestionnaireIssue] = []
    paths = sorted(directory.glob("*.yml"))
    if not paths:
        raise QuestionnaireError([QuestionnaireIssue(directory, None, "", "no questionnaire files (*.yml) found")])

    files: dict[str, _ParsedFile] = {}
    for path in paths:
        parsed = _parse_file(path, issues)
        if parsed is not None:
            files[parsed.spec.id] = parsed

    article_ids = article_ids_in(content_dir if content_dir is not None else get_settings().kb_content_dir)
    invalid_ids = frozenset(path.stem for path in paths) - set(files)
    resolver = _Resolver(files=files, article_ids=article_ids, issues=issues, invalid_ids=invalid_ids)
    questionnaires: dict[str, Questionnaire] = {}
    for parsed in files.values():
        if parsed.spec.kind == "module":
            resolver.chain(parsed)  # reports broken includes of modules too
            continue
        resolved = resolver.resolve(parsed)
        if resolved is not None:
            questionnaires[resolved.id] = resolved

    if issues:
        raise QuestionnaireError(_unique(issues))
    logger.info("loaded %d questionnaires from %s", len(questionnaires), directory)
    return dict(sorted(questionnaires.items(), key=lambda item: (item[1].order, item[0])))


def _unique(issues: list[QuestionnaireIssue]) -> list[QuestionnaireIssue]:
    # A module's problem is found once per questionnaire that includes it.
    seen: set[str] = set()
    unique = []
    for issue in issues:
        if str(issue) not in seen:
            seen.add(str(issue))
            unique.append(issue)
    return unique


@functools.cache
def get_questionnaires() -> dict[str, Questionnaire]:
    """Return the questionnaires of this deployment, loaded once per process."""
    return load_questionnaires()
