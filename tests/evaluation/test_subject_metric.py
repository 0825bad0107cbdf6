"""SubjectMetric through mmengine's Evaluator, as the Runner's validation and test loops use it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from mmaction.registry import METRICS
from mmaction.structures import ActionDataSample
from mmengine.evaluator import Evaluator

from tests.evaluation.test_aggregation import WINDOW_LABELS, WINDOW_SCORES, WINDOW_SUBJECTS


def _windows(scores=WINDOW_SCORES, labels=WINDOW_LABELS, subjects=WINDOW_SUBJECTS):
    """Predicted data samples as a recognizer's ``predict`` returns them."""
    samples = []
    for index, (score, label, subject) in enumerate(zip(scores, labels, subjects, strict=True)):
        sample = ActionDataSample(metainfo=dict(subject_id=subject, window_index=index))
        sample.set_gt_label(label)
        sample.set_pred_score(torch.tensor(score, dtype=torch.float32))
        samples.append(sample)
    return samples


def _evaluate(samples, classes=("WMs", "FMs", "PR"), **metric_args) -> dict:
    evaluator = Evaluator(METRICS.build(dict(type="SubjectMetric", **metric_args)))
    evaluator.dataset_meta = dict(classes=classes)
    evaluator.process(data_samples=samples[:2])  # two batches, as a loop gives them
    evaluator.process(data_samples=samples[2:])
    return evaluator.evaluate(len(samples))


def test_window_and_subject_levels_are_reported():
    metrics = _evaluate(_windows())

    assert metrics["window/num_windows"] == 5 and metrics["subject/num_subjects"] == 2
    assert metrics["window/accuracy"] == pytest.approx(4 / 5)  # only the 0.9 WMs window is wrong
    assert metrics["subject/accuracy"] == pytest.approx(1 / 2)  # the mean misleads infant "a"
    assert metrics["subject/confusion_matrix"] == [[0, 0, 0], [1, 0, 0], [0, 0, 1]]
    assert metrics["window/confusion_matrix"] == [[0, 0, 0], [1, 2, 0], [0, 0, 2]]
    assert metrics["subject/f1_PR"] == pytest.approx(1.0)
    assert metrics["subject/f1_FMs"] == pytest.approx(0.0)
    for level in ("window", "subject"):
        for key in ("precision", "recall", "f1", "f1_WMs", "mcc", "kappa", "roc_auc"):
            assert f"{level}/{key}" in metrics
    assert np.isnan(metrics["subject/roc_auc"])  # WMs has no infant here


def test_window_loss_comes_first_for_checkpoint_selection():
    metrics = _evaluate(_windows())
    assert next(iter(metrics)) == "window/cross_entropy"
    chosen = WINDOW_SCORES[np.arange(5), WINDOW_LABELS]
    assert metrics["window/cross_entropy"] == pytest.approx(-np.mean(np.log(chosen)), rel=1e-5)


def test_majority_vote_is_an_option():
    metrics = _evaluate(_windows(), aggregation="vote")
    assert metrics["subject/accuracy"] == pytest.approx(1.0)
    assert metrics["window/accuracy"] == pytest.approx(4 / 5)  # windows do not depend on it


def test_logit_scores_give_the_same_decisions():
    logits = np.log(WINDOW_SCORES + 1e-3) - 1.0  # the head's average_clips=None
    probabilities = _evaluate(_windows(WINDOW_SCORES))
    from_logits = _evaluate(_windows(logits))
    assert from_logits["window/accuracy"] == probabilities["window/accuracy"]
    assert from_logits["subject/confusion_matrix"] == probabilities["subject/confusion_matrix"]


def test_class_names_come_from_the_dataset_meta():
    scores = np.eye(2)[[0, 1, 1]]
    samples = _windows(scores, [0, 1, 1], ["x", "y", "y"])
    metrics = _evaluate(samples, classes=("normal", "abnormal"))
    assert metrics["subject/f1_normal"] == pytest.approx(1.0)
    assert metrics["subject/roc_auc"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="model scores 2 classes but the dataset names 3"):
        _evaluate(_windows(scores, [0, 1, 1], ["x", "y", "y"]))


def test_per_subject_predictions_are_dumped(tmp_path):
    out_file = tmp_path / "fold0" / "subjects.json"
    metrics = _evaluate(_windows(), out_file=str(out_file))
    document = json.loads(out_file.read_text())
    assert [s["subject_id"] for s in document["subjects"]] == ["a", "b"]
    assert [s["predicted"] for s in document["subjects"]] == [0, 2]
    assert [s["num_windows"] for s in document["subjects"]] == [3, 2]
    assert document["metrics"]["subject/accuracy"] == metrics["subject/accuracy"]
    assert document["aggregation"] == "mean"

    csv_file = tmp_path / "subjects.csv"
    _evaluate(_windows(), out_file=str(csv_file), aggregation="vote")
    assert csv_file.read_text().splitlines()[1].startswith("a,1,FMs,1,FMs,3,")


def test_missing_subject_id_and_bad_arguments_are_explained():
    sample = ActionDataSample().set_gt_label(0)
    sample.set_pred_score(torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(KeyError, match="no metainfo 'subject_id'"):
        _evaluate([sample, sample])
    with pytest.raises(ValueError, match="aggregation must be one of"):
        METRICS.build(dict(type="SubjectMetric", aggregation="max"))
    with pytest.raises(ValueError, match=r"\.json or \.csv"):
        METRICS.build(dict(type="SubjectMetric", out_file="subjects.xlsx"))
