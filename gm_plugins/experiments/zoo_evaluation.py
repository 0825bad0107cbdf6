"""Measure the zoo's models on held-out synthetic infants and compare with their metafiles.

The infants come from a dataset no model was trained on (:data:`EVALUATION_DATASET`, its own
seed). Each model is scored by the task its metafile entry names:

* ``Background Removal`` and ``Pose Alignment``: the chain named in ``Metadata.Chain`` runs on
  every video and is scored against the ground truth (mask IoU; PCK@0.05 of shoulders and hips;
  the share of videos aligned within tolerance), see :mod:`gm_plugins.evaluation.preprocessing`.
* ``GM Classification``: the bundle classifies every video; infant accuracy (abstentions count
  as wrong), accuracy on the decided infants, abstentions, with a Wilson 95 % interval.

The per-infant figures go to the results store (``results/zoo/<model>.json``, keyed by the
weights' hash) so a later check can compare decisions and probabilities infant by infant, not only
the totals.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gm_plugins.utils.zoo import ZooModel, zoo_models

if TYPE_CHECKING:
    from gm_plugins.experiments.results_store import RunKey

#: The held-out dataset's folder and generator settings (seed 7 is used by no training set).
EVALUATION_ROOT = "data/gm_zoo_eval"
EVALUATION_DATASET = dict(subjects=24, seed=7, prep_subjects=0)
#: The results store (:mod:`gm_plugins.experiments.results_store`) and its experiment for zoo
#: checks: one record per zoo model, ``results/zoo/<model>.json``.
RECORDS = "results"
RECORD_EXPERIMENT = "zoo"
#: Results.Task -> (metric name in the metafile, key of the measured figures).
TASK_METRICS = {
    "Background Removal": (("Mask IoU", "iou"),),
    "Pose Alignment": (("PCK@0.05", "pck"), ("Aligned", "aligned")),
    "GM Classification": (
        ("Infant Accuracy", "accuracy"),
        ("Decided Accuracy", "decided_accuracy"),
        ("Abstained", "abstained_share"),
        ("ECE", "ece"),
        ("ECE Uncalibrated", "ece_uncalibrated"),
    ),
}
#: Metrics where lower is better (the rest: higher is better).
LOWER_IS_BETTER = {"Abstained", "ECE", "ECE Uncalibrated"}


def ensure_evaluation_dataset(data_root: str | os.PathLike, workers: int = 2) -> Path:
    """Generate (or resume) the held-out dataset at ``data_root``; returns its path."""
    from gm_plugins.datasets.synthetic import GeneratorConfig, generate_dataset

    generate_dataset(data_root, GeneratorConfig(**EVALUATION_DATASET), workers=workers)
    return Path(data_root)


def generate_evaluation_infants(out_dir: str | os.PathLike, subject_ids: list[str]) -> Path:
    """Only the named infants of the held-out dataset (identical to the full set's), with a
    ``subjects.csv`` listing them: a quick check of a few recorded infants."""
    from gm_plugins.datasets.synthetic import GeneratorConfig
    from gm_plugins.datasets.synthetic.generate import (
        DATASET_GROUP,
        SUBJECT_COLUMNS,
        generate_subject,
    )
    from gm_plugins.datasets.synthetic.subject import make_specs
    from gm_plugins.utils.io import write_csv_atomic

    config = GeneratorConfig(**EVALUATION_DATASET)
    specs = {
        spec.subject_id: spec
        for spec in make_specs(config.subjects, config.seed, config.confound, DATASET_GROUP, "s")
    }
    unknown = sorted(set(subject_ids) - set(specs))
    if unknown:
        raise ValueError(f"the held-out dataset has no infants {unknown}")
    out_dir = Path(out_dir)
    rows = []
    for subject_id in subject_ids:
        spec = specs[subject_id]
        generate_subject(spec, config, out_dir)
        rows.append((spec.subject_id, spec.label, spec.environment, f"videos/{subject_id}.mp4"))
    write_csv_atomic(out_dir / "subjects.csv", SUBJECT_COLUMNS, rows)
    return out_dir


def evaluate_bundle(
    bundle: str | os.PathLike,
    data_root: str | os.PathLike,
) -> dict:
    """Classify the infants of ``data_root/subjects.csv`` with ``bundle``.

    Returns:
        dict with ``accuracy`` (abstentions count as wrong), ``decided_accuracy``,
        ``abstained``, ``abstained_share``, ``accuracy_ci`` and ``infants`` (subject_id, label,
        decision, predicted_class, probabilities).
    """
    from gm_plugins.apis.inference import GMInferencer
    from gm_plugins.datasets.subjects import read_subjects
    from gm_plugins.evaluation.quality_gate import wilson_interval

    data_root = Path(data_root)
    rows = read_subjects(data_root / "subjects.csv", data_root)
    inferencer = GMInferencer(bundle)
    infants = []
    for row in rows:
        result = inferencer.classify(data_root / row["video"])
        infants.append(
            dict(
                subject_id=row["subject_id"],
                label=row["label"],
                decision=result["decision"],
                predicted_class=result["predicted_class"],
                probabilities={
                    name: round(float(p), 6)
                    for name, p in (result["class_probabilities"] or {}).items()
                },
                uncalibrated_probabilities=result["reliability"].get("uncalibrated_probabilities"),
                window_agreement=result["reliability"]["window_agreement"],
                abstain_reasons=result["abstain_reasons"],
            )
        )
        print(f"{row['subject_id']}: {row['label']} -> {result['decision']}", flush=True)
    correct = sum(infant["decision"] == infant["label"] for infant in infants)
    decided = [infant for infant in infants if infant["decision"] != "uncertain"]
    decided_correct = sum(infant["decision"] == infant["label"] for infant in decided)
    total = len(infants)
    calibration = calibration_figures(infants)
    return dict(
        accuracy=correct / total if total else float("nan"),
        accuracy_ci=list(wilson_interval(correct, total)),
        decided_accuracy=decided_correct / len(decided) if decided else float("nan"),
        abstained=total - len(decided),
        abstained_share=(total - len(decided)) / total if total else float("nan"),
        infants_total=total,
        calibration=calibration,
        ece=calibration.get("ece_after"),
        ece_uncalibrated=calibration.get("ece_before"),
        infants=infants,
    )


def calibration_figures(infants: list[dict]) -> dict:
    """ECE of the infants' top probabilities before and after the bundle's calibration, and
    the reliability tables (infants without windows left out)."""
    from gm_plugins.evaluation.calibration import expected_calibration_error, reliability_table

    figures: dict = {}
    for name, key in (("before", "uncalibrated_probabilities"), ("after", "probabilities")):
        rows = [(infant[key], infant["label"]) for infant in infants if infant.get(key)]
        if not rows:
            continue
        confidences = np.array([max(p.values()) for p, _ in rows])
        correct = np.array([max(p, key=p.get) == label for p, label in rows])
        figures[f"ece_{name}"] = round(expected_calibration_error(confidences, correct), 6)
        figures[f"reliability_{name}"] = reliability_table(confidences, correct)
    return figures


def evaluate_chain(chain: str | os.PathLike, data_root: str | os.PathLike) -> dict:
    """Mask IoU, PCK and the aligned share of a chain on ``data_root``'s infants."""
    from gm_plugins.evaluation import preprocessing as scores

    summary = scores.evaluate(chain, data_root)
    return dict(
        iou=summary["iou"],
        pck=summary["pck"],
        aligned=summary["aligned"],
        videos=summary["videos"],
        failed=summary["failed"],
        infants=summary["rows"],
    )


def _task(model: ZooModel) -> str:
    tasks = {result.get("Task") for result in model.results} & set(TASK_METRICS)
    if len(tasks) != 1:
        raise ValueError(f"{model.metafile}: {model.name} needs one Results.Task of {TASK_METRICS}")
    return tasks.pop()


def preprocessing_models(root: str | os.PathLike = ".") -> list[ZooModel]:
    """The zoo's segmentation and pose models (measured through their Metadata.Chain)."""
    return [model for model in zoo_models(root) if _task(model) != "GM Classification"]


def measure(model: ZooModel, data_root: str | os.PathLike, root: str | os.PathLike = ".") -> dict:
    """The figures of one zoo model on ``data_root`` (see the module docstring)."""
    root = Path(root)
    task = _task(model)
    if task == "GM Classification":
        return evaluate_bundle(root / model.weights, data_root)
    chain = model.metadata.get("Chain")
    if not chain:
        raise ValueError(f"{model.metafile}: {model.name} names no Metadata.Chain to run")
    return evaluate_chain(root / chain, data_root)


def compare(model: ZooModel, figures: dict, tolerance: float) -> list[str]:
    """One line per recorded metric: recorded, measured, and whether it holds."""
    lines = []
    for metric, key in TASK_METRICS[_task(model)]:
        try:
            recorded = model.metric(metric)
        except KeyError:
            continue
        measured = float(figures[key])
        if metric in LOWER_IS_BETTER:
            holds = measured <= recorded + tolerance
        else:
            holds = measured >= recorded - tolerance
        verdict = "holds" if holds else "WORSE THAN RECORDED"
        lines.append(f"{model.name}: {metric} recorded {recorded:.3f}, measured {measured:.3f} "
                     f"({verdict}, tolerance {tolerance})")  # fmt: skip
    return lines


def zoo_run_key(model: ZooModel, root: str | os.PathLike = ".") -> RunKey:
    """The results-store key of a zoo model's evaluation: its weights' hash, its config and
    chain, and the held-out dataset's settings."""
    from gm_plugins.experiments.results_store import RunKey, config_sha256

    chain = model.metadata.get("Chain")
    digest = config_sha256(
        model.config,
        overrides=dict(EVALUATION_DATASET, task=_task(model)),
        chains=[chain] if chain else [],
        root=root,
    )
    return RunKey(
        experiment=RECORD_EXPERIMENT,
        run=model.name,
        config=model.config,
        config_sha256=digest,
        checkpoints={model.weights: model.sha256},
        seed=EVALUATION_DATASET["seed"],
    )


def _store_infants(figures: dict, classes: list[str]) -> dict | None:
    """A bundle's per-infant figures in the store's ``test_infants`` form (decisions kept)."""
    infants = figures.get("infants") or []
    if not infants or "probabilities" not in infants[0]:
        return None
    return dict(
        classes=classes,
        ids=[infant["subject_id"] for infant in infants],
        labels=[classes.index(infant["label"]) for infant in infants],
        predicted=[classes.index(infant["predicted_class"]) for infant in infants],
        probabilities=[[infant["probabilities"][name] for name in classes] for infant in infants],
        decisions=[infant["decision"] for infant in infants],
    )


def write_record(model: ZooModel, figures: dict, seconds: float,
                 root: str | os.PathLike = ".") -> Path:  # fmt: skip
    """``results/zoo/<model>.json`` in the results store's format: the summary figures as the
    test figures, a bundle's infants as ``test_infants``, a chain's per-video rows in
    ``extra``."""
    from gm_plugins.datasets.subjects import GM_CLASSES
    from gm_plugins.experiments.results_store import ResultsStore, build_record

    summary = {k: v for k, v in figures.items() if isinstance(v, (int, float))}
    infants = _store_infants(figures, list(GM_CLASSES))
    extra = dict(dataset=dict(EVALUATION_DATASET))
    if infants is None:
        extra["videos"] = figures.get("infants", [])
    record = build_record(
        zoo_run_key(model, root),
        seconds=seconds,
        validation=None,
        test=summary,
        infants=infants,
        start_time=datetime.now(UTC).isoformat(timespec="seconds"),
        threads=torch_threads(),
        root=root,
        extra=extra,
    )
    return ResultsStore(Path(root) / RECORDS).write(record)


def read_zoo_record(model: ZooModel, root: str | os.PathLike = ".") -> dict:
    """The stored evaluation of a zoo model; refused when it was made with other weights."""
    from gm_plugins.experiments.results_store import ResultsStore

    record = ResultsStore(Path(root) / RECORDS).read(RECORD_EXPERIMENT, model.name)
    if record is None:
        raise FileNotFoundError(
            f"no stored evaluation of {model.name}: run tools/analysis_tools/evaluate_zoo.py "
            f"--models {model.name} --write"
        )
    problems = zoo_run_key(model, root).differences(record)
    if problems:
        raise ValueError(f"the stored evaluation of {model.name} is stale: {'; '.join(problems)}")
    return record


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def evaluate_zoo(
    data_root: str | os.PathLike,
    names: list[str] | None = None,
    root: str | os.PathLike = ".",
    tolerance: float = 0.02,
    write: bool = False,
) -> tuple[list[str], bool]:
    """Measure zoo models (all, or ``names``); returns the report lines and whether all hold."""
    lines, ok = [], True
    measured: dict[tuple[str, str], tuple[dict, float]] = {}  # a chain's models share one run
    for model in zoo_models(root):
        if names and model.name not in names:
            continue
        key = (
            (model.weights, "")
            if _task(model) == "GM Classification"
            else ("", model.metadata.get("Chain", ""))
        )
        if key not in measured:
            started = time.perf_counter()
            measured[key] = (measure(model, data_root, root), time.perf_counter() - started)
        figures, seconds = measured[key]
        if write:
            write_record(model, figures, seconds, root)
        checks = compare(model, figures, tolerance)
        ok &= not any("WORSE" in line for line in checks)
        lines += checks or [f"{model.name}: no recorded metric to compare with"]
    return lines, ok
