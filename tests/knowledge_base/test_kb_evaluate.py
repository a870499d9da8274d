"""Evaluation: question files, the deterministic split and the metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_base.evaluate import (
    TEST_PERCENT,
    Question,
    QuestionFileError,
    evaluate,
    load_questions,
    question_files,
)
from knowledge_base.index import KnowledgeIndex
from knowledge_base.retrieval import Retriever

QUESTIONS = """
- q: "How can I use less plastic packaging?"
  lang: en
  expect: [plastic-packaging]
- q: "lam sao giam bao bi nhua"
  lang: vi-nd
  expect: [plastic-packaging]
- q: "FSC chain of custody for furniture wood"
  lang: en
  expect: [fsc-wood]
- q: "tiết kiệm điện trong xưởng"
  lang: vi
  expect: [energy-saving]
- q: "who won the football match"
  lang: en
  expect: []
"""


def test_split_is_deterministic_and_balanced() -> None:
    questions = [Question(q=f"question number {n}", lang="en", expect=("a",), source="x") for n in range(1000)]
    splits = [question.split for question in questions]
    assert splits == [question.split for question in questions]
    share = splits.count("test") / len(splits)
    assert abs(share - TEST_PERCENT / 100) < 0.05
    same_text = Question(q="  Question number 1 ", lang="vi", expect=(), source="y")
    assert same_text.split == questions[1].split


def test_invalid_question_file_names_entry(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("- q: hello\n  lang: fr\n  expect: []\n", encoding="utf-8")
    with pytest.raises(QuestionFileError, match=r"bad.yml: question 1: field 'lang'"):
        load_questions([path])


def test_evaluate_computes_metrics(tmp_path: Path, content_dir: Path, fake_embedder, tokenizer) -> None:
    path = tmp_path / "questions.yml"
    path.write_text(QUESTIONS, encoding="utf-8")
    index = KnowledgeIndex(fake_embedder, tokenizer)
    index.build(content_dir)
    results = evaluate([path], {"lexical": Retriever(index, "lexical")}, split="all")
    result = results[0]
    overall = result.overall()
    assert overall.questions == 4
    assert result.out_of_scope == 1
    assert 0 <= overall.top1 <= overall.top3 <= 4
    assert result.by_language["vi-nd"].top1 == 1
    assert 0.0 <= result.rejection_rate <= 1.0
    assert set(result.as_dict()) >= {"overall", "by_language", "out_of_scope_rejection", "best_threshold"}


def test_repository_question_files_are_valid() -> None:
    files = question_files()
    if not files:
        pytest.skip("no question files yet")
    questions = load_questions(files)
    assert {question.split for question in questions} == {"dev", "test"}
