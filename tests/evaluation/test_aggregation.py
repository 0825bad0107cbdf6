"""Window-to-infant aggregation and classification metrics against hand-computed values."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from gm_plugins.evaluation.aggregation import (
    aggregate_by_subject,
    as_probabilities,
    classification_metrics,
    mean_cross_entropy,
    vote_decision,
    write_subject_predictions,
)

# Six windows, two per class; arg-max predictions are [0, 1, 1, 1, 2, 0].
LABELS = [0, 0, 1, 1, 2, 2]
SCORES = np.array(
    [
        [0.6, 0.3, 0.1],
        [0.3, 0.5, 0.2],
        [0.4, 0.5, 0.1],
        [0.2, 0.7, 0.1],
        [0.1, 0.2, 0.7],
        [0.5, 0.2, 0.3],
    ]
)
PREDICTED = SCORES.argmax(axis=1)


def test_metrics_match_hand_computed_values():
    metrics = classification_metrics(LABELS, PREDICTED, SCORES)

    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # Per class: precision 1/2, 2/3, 1/1; recall 1/2, 2/2, 1/2; F1 1/2, 4/5, 2/3.
    assert metrics["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert metrics["recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert metrics["f1_WMs"] == pytest.approx(1 / 2)
    assert metrics["f1_FMs"] == pytest.approx(4 / 5)
    assert metrics["f1_PR"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    # Multi-class MCC from the confusion matrix: (c*s - sum p_k t_k) / sqrt(...), c=4, s=6,
    # predicted counts p = (2, 3, 1), true counts t = (2, 2, 2).
    assert metrics["mcc"] == pytest.approx((4 * 6 - 12) / math.sqrt((36 - 14) * (36 - 12)))
    # Cohen's kappa: observed agreement 4/6, chance agreement 12/36.
    assert metrics["kappa"] == pytest.approx((4 / 6 - 1 / 3) / (1 - 1 / 3))
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_one_vs_rest_roc_auc_per_class_and_macro():
    metrics = classification_metrics(LABELS, PREDICTED, SCORES)
    # WMs: 6 of 8 positive-negative pairs ordered; FMs: 7 and a tie (7.5/8); PR: 8/8.
    assert metrics["roc_auc_WMs"] == pytest.approx(0.75)
    assert metrics["roc_auc_FMs"] == pytest.approx(0.9375)
    assert metrics["roc_auc_PR"] == pytest.approx(1.0)
    assert metrics["roc_auc"] == pytest.approx((0.75 + 0.9375 + 1.0) / 3)


def test_roc_auc_is_nan_unless_every_class_is_present():
    metrics = classification_metrics(LABELS[:4], PREDICTED[:4], SCORES[:4])
    assert math.isnan(metrics["roc_auc"])
    assert math.isnan(metrics["roc_auc_PR"])
    assert not math.isnan(metrics["roc_auc_WMs"])
    assert metrics["accuracy"] == pytest.approx(3 / 4)


def test_logits_are_turned_into_probabilities_for_auc_and_loss():
    logits = np.log(SCORES) + 3.0  # the same softmax as SCORES
    assert np.allclose(as_probabilities(logits), SCORES)
    from_logits = classification_metrics(LABELS, PREDICTED, logits)
    assert from_logits["roc_auc"] == pytest.approx(
        classification_metrics(LABELS, PREDICTED, SCORES)["roc_auc"]
    )
    expected_loss = -np.mean(np.log([0.6, 0.3, 0.5, 0.7, 0.7, 0.3]))
    assert mean_cross_entropy(LABELS, SCORES) == pytest.approx(expected_loss)
    assert mean_cross_entropy(LABELS, logits) == pytest.approx(expected_loss)
    assert mean_cross_entropy([1], np.zeros((1, 3))) == pytest.approx(math.log(3))


def test_class_names_name_the_per_class_keys():
    metrics = classification_metrics([0, 1], [0, 1], np.eye(2), class_names=("normal", "PR"))
    assert {"f1_normal", "f1_PR", "roc_auc_normal", "roc_auc_PR"} <= set(metrics)
    with pytest.raises(ValueError, match="3 classes"):
        classification_metrics([0, 1], [0, 1], np.eye(2))


# Infant "a" (FMs): one confident WMs window outweighs two FMs windows in the mean, not in a vote.
WINDOW_SUBJECTS = ["a", "a", "a", "b", "b"]
WINDOW_LABELS = [1, 1, 1, 2, 2]
WINDOW_SCORES = np.array(
    [
        [0.9, 0.05, 0.05],
        [0.4, 0.6, 0.0],
        [0.4, 0.6, 0.0],
        [0.1, 0.1, 0.8],
        [0.2, 0.2, 0.6],
    ]
)


def test_mean_and_vote_aggregation_disagree_on_a_constructed_infant():
    by_mean = aggregate_by_subject(WINDOW_SUBJECTS, WINDOW_LABELS, WINDOW_SCORES, "mean")
    by_vote = aggregate_by_subject(WINDOW_SUBJECTS, WINDOW_LABELS, WINDOW_SCORES, "vote")

    assert [p.subject_id for p in by_mean] == ["a", "b"]
    assert [p.num_windows for p in by_mean] == [3, 2]
    assert [p.label for p in by_mean] == [1, 2]
    assert [p.predicted for p in by_mean] == [0, 2]  # mean of "a": (0.567, 0.417, 0.017)
    assert np.allclose(by_mean[0].scores, [1.7 / 3, 1.25 / 3, 0.05 / 3])
    assert [p.predicted for p in by_vote] == [1, 2]  # two of three windows say FMs
    assert np.allclose(by_vote[0].scores, [1 / 3, 2 / 3, 0.0])


def test_vote_ties_are_broken_by_the_mean_score():
    winner, fractions = vote_decision(np.array([[0.6, 0.4, 0.0], [0.0, 0.3, 0.7]]))
    assert np.allclose(fractions, [0.5, 0.0, 0.5])
    assert winner == 2  # classes 0 and 2 tie on votes; mean scores 0.30 < 0.35


def test_aggregation_rejects_bad_input():
    with pytest.raises(ValueError, match="subject 'a' carry different labels"):
        aggregate_by_subject(["a", "a"], [0, 1], np.eye(3)[:2])
    with pytest.raises(ValueError, match="aggregation must be one of"):
        aggregate_by_subject(["a"], [0], np.eye(3)[:1], method="median")


def test_predictions_are_written_as_json_and_csv(tmp_path):
    predictions = aggregate_by_subject(WINDOW_SUBJECTS, WINDOW_LABELS, WINDOW_SCORES, "mean")
    json_path = write_subject_predictions(
        tmp_path / "out" / "subjects.json", predictions, metrics={"roc_auc": math.nan, "x": 1}
    )
    document = json.loads(json_path.read_text())
    assert document["classes"] == ["WMs", "FMs", "PR"]
    assert document["metrics"] == {"roc_auc": None, "x": 1}  # nan is not valid JSON
    first = document["subjects"][0]
    assert (first["subject_id"], first["label_name"], first["predicted_name"]) == (
        "a",
        "FMs",
        "WMs",
    )
    assert first["scores"] == pytest.approx([1.7 / 3, 1.25 / 3, 0.05 / 3])

    csv_path = write_subject_predictions(tmp_path / "subjects.csv", predictions)
    rows = list(csv.DictReader(csv_path.open()))
    assert [row["subject_id"] for row in rows] == ["a", "b"]
    assert rows[1]["predicted_name"] == "PR" and float(rows[1]["score_PR"]) == pytest.approx(0.7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "subjects.csv"]  # no temp files

    with pytest.raises(ValueError, match=r"\.json or \.csv"):
        write_subject_predictions(tmp_path / "subjects.txt", predictions)
