"""What a bundle learns from its validation infants: calibration, window agreement, domain.

At export the classifier runs on the infants of its config's validation split (the cache its
``val_dataloader`` reads, through :class:`gm_plugins.evaluation.window_scores.WindowScorer`,
exactly as inference will) and fits:

* a **temperature** for the window probabilities (:mod:`gm_plugins.evaluation.calibration`),
  minimising the infant-level negative log-likelihood, so that the bundle's top-probability
  threshold means what it says (at least 1: a bundle never makes the classifier's windows more
  confident than they are); the expected calibration error (ECE) before and after and a
  reliability table are kept for the report;
* the least **window agreement** (share of windows agreeing with the decision) worth a
  decision: a video whose windows disagree more than correctly decided validation infants'
  did gets "uncertain";
* the **domain**: the range of every quality figure over the validation infants
  (:mod:`gm_plugins.evaluation.domain`); a video outside it gets "uncertain: outside the
  model's training domain", and one whose share of usable pose keyframes is below the range
  counts as an alignment fallback.

Choices are made on validation infants only; the figures of held-out infants are measured by
``tools/analysis_tools/evaluate_zoo.py``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from mmengine.config import Config

from gm_plugins.datasets.cache import read_cached_video
from gm_plugins.datasets.subjects import GM_CLASSES
from gm_plugins.datasets.windows import WindowSpec
from gm_plugins.evaluation import calibration as cal
from gm_plugins.evaluation.aggregation import mean_decision, vote_decision
from gm_plugins.evaluation.domain import choose_margin, fit_domain, video_figures
from gm_plugins.evaluation.window_scores import WindowScorer
from gm_plugins.models.loading import load_recognizer
from gm_plugins.utils.config import ConfigError, load_config

VALIDATION_FORMAT = "gm_plugins-validation/1"
RELIABILITY_BINS = 10


@dataclass
class ValidationInfant:
    """One validation infant: its windows' probabilities (before calibration) and figures."""

    subject_id: str
    label: int
    window_probabilities: np.ndarray
    figures: dict


def validation_infants(
    config: str | os.PathLike | Config,
    checkpoint: str | os.PathLike,
    split: str = "val",
    device: str = "cpu",
) -> list[ValidationInfant]:
    """Score every infant of the config's ``split`` (``'val'``: its ``val_dataloader``).

    Raises:
        ConfigError: the config has no such dataloader or its dataset has no cache_root.
    """
    from mmaction.registry import DATASETS

    cfg = config if isinstance(config, Config) else load_config(config)
    loader = cfg.get(f"{split}_dataloader")
    if not loader or "dataset" not in loader:
        raise ConfigError(
            f"the classifier config has no {split}_dataloader.dataset: a bundle is fitted on "
            "the validation infants its config names"
        )
    dataset_cfg = dict(loader.dataset, lazy_init=False)
    dataset = DATASETS.build(dataset_cfg)
    cache_root = getattr(dataset, "cache_root", None)
    if cache_root is None:
        raise ConfigError(f"{split}_dataloader.dataset has no cache_root: nothing to score")
    subjects: dict[str, int] = {}
    for index in range(len(dataset)):  # windows; the data list may be serialised
        item = dataset.get_data_info(index)
        subjects.setdefault(str(item["subject_id"]), int(item["label"]))
    recognizer = load_recognizer(cfg, checkpoint, device, True)
    window = WindowSpec(**dict(cfg.test_dataloader.dataset.window))
    classes = tuple(cfg.get("classes", None) or GM_CLASSES)
    scorer = WindowScorer(recognizer, cfg, window, len(classes))
    infants = []
    for subject_id, label in subjects.items():
        entry = read_cached_video(cache_root, subject_id)
        probabilities, _ = scorer(entry)
        if len(probabilities):
            infants.append(
                ValidationInfant(subject_id, label, probabilities, video_figures(entry.meta))
            )
    return infants


def _decisions(
    infants: Sequence[ValidationInfant], temperature: float, aggregation: str
) -> tuple[np.ndarray, np.ndarray]:
    """(N,) decided class and (N,) its probability, after the temperature."""
    decide = mean_decision if aggregation == "mean" else vote_decision
    tops, confidences = [], []
    for infant in infants:
        top, scores = decide(cal.apply_temperature(infant.window_probabilities, temperature))
        tops.append(top)
        confidences.append(float(scores[top]))
    return np.array(tops, np.int64), np.array(confidences, np.float64)


def fit_validation(
    infants: Sequence[ValidationInfant],
    aggregation: str = "mean",
    domain_margin: float | None = None,
    agreement_quantile: float = 0.05,
    calibrate: bool = True,
) -> dict:
    """The validation record a bundle stores (JSON-ready): calibration, agreement, domain.

    Args:
        infants: from :func:`validation_infants`.
        aggregation: how windows become an infant's scores (the classifier's).
        domain_margin: widening of each figure's range, in range widths (None: chosen by
            leave-one-out on the infants, see
            :func:`gm_plugins.evaluation.domain.choose_margin`).
        agreement_quantile: see :func:`gm_plugins.evaluation.calibration.agreement_threshold`.
        calibrate: fit a temperature (False keeps T = 1 and only measures).
    """
    if not infants:
        raise ValueError("no validation infant has a window: nothing to fit a bundle on")
    labels = np.array([infant.label for infant in infants], np.int64)
    windows = [infant.window_probabilities for infant in infants]
    if calibrate and aggregation == "mean":  # vote fractions do not depend on a temperature
        fitted = cal.fit_temperature(windows, labels, aggregation=aggregation)
        # Never sharper than the classifier: on a few validation infants, all decided right,
        # the likelihood rewards sharpening without limit, and a sharpened video would clear
        # the probability threshold on weaker evidence than the classifier gave.
        fit = dataclasses.replace(fitted, temperature=max(fitted.temperature, 1.0))
        if fitted.temperature < 1.0:
            scores = cal.infant_scores(windows, 1.0, aggregation)
            fit = dataclasses.replace(
                fit,
                nll_after=cal.infant_nll(scores, labels),
                note=f"fitted T = {fitted.temperature:.3g} would sharpen the windows; kept T = 1",
            )
    else:
        scores = cal.infant_scores(windows, 1.0, aggregation)
        nll = cal.infant_nll(scores, labels)
        fit = cal.TemperatureFit(1.0, nll, nll, len(infants), aggregation)
    before_top, before_conf = _decisions(infants, 1.0, aggregation)
    after_top, after_conf = _decisions(infants, fit.temperature, aggregation)
    before_correct, after_correct = before_top == labels, after_top == labels
    agreements = np.array(
        [
            cal.window_agreement(infant.window_probabilities, top)
            for infant, top in zip(infants, after_top, strict=True)
        ]
    )
    scaled = [cal.apply_temperature(w, fit.temperature) for w in windows]
    information = np.array([cal.window_mutual_information(w) for w in scaled])
    figures = [infant.figures for infant in infants]
    flagged = None
    if domain_margin is None:
        domain_margin, flagged = choose_margin(figures)
    return dict(
        format=VALIDATION_FORMAT,
        infants=len(infants),
        subject_ids=[infant.subject_id for infant in infants],
        accuracy=round(float(after_correct.mean()), 6),
        calibration=dict(
            fit.to_dict(),
            ece_before=round(cal.expected_calibration_error(before_conf, before_correct), 6),
            ece_after=round(cal.expected_calibration_error(after_conf, after_correct), 6),
            reliability_before=cal.reliability_table(before_conf, before_correct),
            reliability_after=cal.reliability_table(after_conf, after_correct),
            bins=RELIABILITY_BINS,
        ),
        agreement=dict(
            min_window_agreement=round(
                cal.agreement_threshold(agreements, after_correct, agreement_quantile), 6
            ),
            quantile=agreement_quantile,
            validation_min=round(float(agreements.min()), 6),
            validation_median=round(float(np.median(agreements)), 6),
            mutual_information_median=round(float(np.median(information)), 6),
            mutual_information_max=round(float(information.max()), 6),
        ),
        domain=dict(
            margin=domain_margin,
            margin_chosen_by="given" if flagged is None else "leave-one-out",
            leave_one_out_flagged=None if flagged is None else round(flagged, 6),
            figures=fit_domain(figures, domain_margin),
        ),
    )
