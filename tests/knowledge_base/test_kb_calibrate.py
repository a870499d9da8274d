"""The decline model: fitting, thresholds, the model file and the encoder check."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from knowledge_base.calibrate import GROUPS, CalibrationError, Sample, _threshold, cross_validate, fit, measure
from knowledge_base.embedding_model import SentenceEmbedder
from knowledge_base.index import KnowledgeIndex
from knowledge_base.retrieval import (
    DECLINE_MODEL_FILE,
    E5_CALIBRATION,
    DeclineModel,
    DeclineModelError,
    GroupDecline,
    QuerySignals,
    Retriever,
    load_decline_model,
)


def synthetic_samples(seed: int = 7, per_class: int = 40) -> list[Sample]:
    """Return samples in every group where in-scope questions score higher, with overlap."""
    rng = np.random.default_rng(seed)
    samples = []
    for group in GROUPS:
        for in_scope in (True, False):
            shift = 0.03 if in_scope else 0.0
            for _ in range(per_class):
                signals = QuerySignals(
                    group=group,
                    top_dense=float(0.84 + shift + rng.normal(0, 0.015)),
                    top_lexical=float(max(0.0, 0.25 + 3 * shift + rng.normal(0, 0.08))),
                    agree=bool(rng.random() < (0.7 if in_scope else 0.3)),
                )
                samples.append(Sample(signals, in_scope, f"{group} {in_scope}"))
    return samples


def test_fit_declines_target_share_of_fitted_questions() -> None:
    samples = synthetic_samples()
    model = fit(samples, target_rejection=0.9)
    rates = measure(model, samples)
    assert rates.rejection() >= 0.9
    assert rates.rejection() < 0.95
    assert rates.answered_share() > 0.5
    assert set(model.groups) == set(GROUPS)


def test_fitted_weights_point_the_right_way() -> None:
    model = fit(synthetic_samples(), target_rejection=0.9)
    assert model.agreement > 0
    for group in GROUPS:
        assert model.groups[group].dense > 0, group
        assert model.groups[group].lexical > 0, group


def test_probability_matches_logistic_formula() -> None:
    model = DeclineModel(groups={"en": GroupDecline(intercept=-10.0, dense=10.0, lexical=2.0)}, agreement=0.5, threshold=0.5)
    signals = QuerySignals(group="km", top_dense=0.9, top_lexical=0.3, agree=True)
    log_odds = -10.0 + 10.0 * 0.9 + 2.0 * 0.3 + 0.5
    assert model.probability(signals) == pytest.approx(1 / (1 + math.exp(-log_odds)))


def test_fit_rejects_group_without_out_of_scope() -> None:
    samples = [sample for sample in synthetic_samples() if sample.in_scope or sample.signals.group != "lo"]
    with pytest.raises(CalibrationError, match="'lo'"):
        fit(samples, target_rejection=0.9)


def test_fit_rejects_invalid_target() -> None:
    with pytest.raises(CalibrationError, match="target rejection"):
        fit(synthetic_samples(), target_rejection=1.5)


def test_threshold_splits_between_values() -> None:
    values = np.array([0.1, 0.2, 0.3, 0.4])
    assert _threshold(values, 0.5) == pytest.approx(0.25)
    assert _threshold(values, 0.75) == pytest.approx(0.35)
    assert _threshold(values, 0.99) > 0.4


def test_cross_validation_counts_each_repeat() -> None:
    samples = synthetic_samples(per_class=20)
    rates = cross_validate(samples, target_rejection=0.9, repeats=2)
    assert sum(rates.in_scope.values()) + sum(rates.out_of_scope.values()) == 2 * len(samples)
    assert 0.5 < rates.rejection() <= 1.0


def test_model_round_trips_through_json(tmp_path: Path) -> None:
    model = fit(synthetic_samples(), target_rejection=0.9)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model.to_dict()), encoding="utf-8")
    assert load_decline_model(path) == model


def test_missing_model_file_falls_back(tmp_path: Path) -> None:
    assert load_decline_model(tmp_path / "absent.json") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[]", "expected a JSON object"),
        ('{"groups": {"en": {"intercept": 1, "dense": 1, "lexical": 1}}, "agreement": 1}', "invalid or missing field"),
        ('{"groups": {"vi": {"intercept": 1, "dense": 1, "lexical": 1}}, "agreement": 1, "threshold": 0.5}', "fallback"),
        ('{"groups": {"en": {"intercept": 1, "dense": 1, "lexical": 1}}, "agreement": 1, "threshold": 2}', "threshold"),
    ],
)
def test_invalid_model_file_names_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "model.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DeclineModelError, match=message) as raised:
        load_decline_model(path)
    assert str(path) in str(raised.value)
    assert "spin kb calibrate --write" in str(raised.value)


def test_repository_model_fits_current_encoder(e5_embedder: SentenceEmbedder) -> None:
    """Fails after an encoder change until the model is refitted with `spin kb calibrate --write`."""
    model = load_decline_model(DECLINE_MODEL_FILE)
    assert model is not None, f"{DECLINE_MODEL_FILE} is missing"
    assert set(model.groups) == set(GROUPS)
    assert model.encoder == e5_embedder.fingerprint
    assert E5_CALIBRATION.decline_model == model


def test_encoder_mismatch_is_logged(fixture_index: KnowledgeIndex, caplog: pytest.LogCaptureFixture) -> None:
    assert E5_CALIBRATION.decline_model is not None
    other = dataclasses.replace(E5_CALIBRATION.decline_model, encoder="another-encoder:0")
    calibration = dataclasses.replace(E5_CALIBRATION, decline_model=other)
    with caplog.at_level(logging.WARNING, logger="knowledge_base.retrieval"):
        Retriever(fixture_index, calibration=calibration)
    assert "another-encoder:0" in caplog.text
    assert "spin kb calibrate --write" in caplog.text
