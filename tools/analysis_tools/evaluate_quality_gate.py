"""Fit and measure the "no infant found" quality gate of a preprocessing chain.

Preprocesses the infants of ``DATA/subjects.csv`` and the scenes without an infant of
``DATA/empty_scenes.csv`` (``tools/data/make_synthetic_dataset.py --empty-scenes N``) with the
chain, fits the gate on the validation half only (per-figure thresholds from the infants, the
evidence model from infants and empty scenes), and reports how many infants and empty scenes it
flags on each half (95 % Wilson intervals). Writes
``OUT/gate.json`` (the thresholds, to paste into the chain's InfantPresenceGate step),
``OUT/figures.csv``, ``OUT/report.csv`` and ``OUT/report.md``. Caches are kept in OUT, so a
rerun only measures. ``--fit-on all`` fits on every video of one dataset, ``--fit-figures``
fits on the figures.csv of earlier runs, and ``--gate gate.json`` measures a gate unchanged
on another dataset (both halves are then unseen).

Example::

    python tools/analysis_tools/evaluate_quality_gate.py \
        configs/preprocess/preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py \
        --data-root data/gm_gate --out work_dirs/quality_gate --workers 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import gm_plugins  # noqa: F401
from gm_plugins.datasets.subjects import read_subjects
from gm_plugins.evaluation.quality_gate import (
    cross_validate_gate,
    figures_table,
    fit_on_validation,
    gate_report,
)
from gm_plugins.preprocess.jobs import format_summary, preprocess_dataset
from gm_plugins.preprocess.quality import (
    DEFAULT_EVIDENCE_FIGURES,
    EVIDENCE_FIGURES,
    QualityGate,
)
from gm_plugins.utils.io import write_json_atomic, write_text_atomic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="config file holding preprocess_pipeline")
    parser.add_argument("--data-root", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--margin", type=float, default=0.25, help="slack beyond the infants")
    parser.add_argument(
        "--no-evidence-model",
        action="store_true",
        help="fit the per-figure thresholds only (no logistic evidence model)",
    )
    parser.add_argument(
        "--evidence-quantile",
        type=float,
        default=0.998,
        help="quantile of the fitting infants' evidence logits where the threshold starts "
        "(1: the largest infant; default %(default)s, chosen by --cross-validate 10 on the "
        "demo chain's gate sets)",
    )
    parser.add_argument(
        "--evidence-margin", type=float, default=0.0, help="logit slack beyond that quantile"
    )
    parser.add_argument(
        "--evidence-figures",
        nargs="+",
        choices=EVIDENCE_FIGURES,
        default=list(DEFAULT_EVIDENCE_FIGURES),
        help="the figures the evidence model combines (default: %(default)s)",
    )
    parser.add_argument(
        "--cross-validate",
        type=int,
        default=0,
        metavar="K",
        help="before fitting, K-fold cross-validate the evidence quantiles of --cv-quantiles "
        "on the fitting videos (the --fit-figures tables, else this data) and write cv.csv",
    )
    parser.add_argument(
        "--cv-quantiles",
        type=float,
        nargs="+",
        default=[0.99, 0.995, 0.998, 1.0],
        help="evidence quantiles compared by --cross-validate",
    )
    parser.add_argument(
        "--fit-figures",
        type=Path,
        nargs="+",
        default=None,
        help="fit on these figures.csv tables of earlier runs (same chain) instead of this "
        "data's, e.g. two earlier gate sets; this data is then measured unseen",
    )
    parser.add_argument(
        "--fit-on",
        choices=("validation", "all"),
        default="validation",
        help="fit on the validation half (report both halves) or on every video (to measure "
        "the gate on another dataset with --gate)",
    )
    parser.add_argument(
        "--gate",
        type=Path,
        default=None,
        help="a gate.json to measure as it is on this data (nothing is fitted)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    args = parse_args(argv)
    tables = dict(infant="subjects.csv", empty="empty_scenes.csv")
    frames = []
    for kind, name in tables.items():
        table = args.data_root / name
        cache_root = args.out / f"cache_{kind}"
        summary = preprocess_dataset(
            args.config,
            args.data_root,
            cache_root,
            workers=args.workers,
            progress=False,
            require_labels=kind == "infant",
            table=table,
        )
        print(f"[{kind}] {format_summary(summary, cache_root)}")
        rows = read_subjects(table, args.data_root, require_label=False, check_videos=False)
        frames.append(figures_table(cache_root, rows, kind))
    table = pd.concat(frames, ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.cross_validate:
        cv_table = table
        if args.fit_figures:
            cv_table = pd.concat([pd.read_csv(path) for path in args.fit_figures])
        settings = {
            f"quantile {quantile:g}": dict(
                infant_quantile=quantile,
                evidence_margin=args.evidence_margin,
                evidence_figures=args.evidence_figures,
                evidence_model=not args.no_evidence_model,
            )
            for quantile in args.cv_quantiles
        }
        cv = cross_validate_gate(
            cv_table.reset_index(drop=True), settings, args.cross_validate, args.margin
        )
        write_text_atomic(args.out / "cv.csv", cv.to_csv(index=False))
        print(f"{args.cross_validate}-fold cross-validation on the fitting videos:")
        print(cv.to_string(index=False))
    if args.gate is not None:
        gate = QualityGate(**json.loads(args.gate.read_text()))
        source = f"measured as given in {args.gate}"
    else:
        halves = ("validation",) if args.fit_on == "validation" else ("validation", "test")
        fitting = table
        if args.fit_figures:
            fitting = pd.concat([pd.read_csv(path) for path in args.fit_figures])
            halves = ("validation", "test")
        gate = fit_on_validation(
            fitting,
            args.margin,
            evidence_model=not args.no_evidence_model,
            halves=halves,
            evidence_margin=args.evidence_margin,
            infant_quantile=args.evidence_quantile,
            evidence_figures=args.evidence_figures,
        )
        source = f"fitted on the {' and '.join(halves)} half"
        if args.fit_figures:
            source = "fitted on " + " + ".join(str(path) for path in args.fit_figures)
        write_json_atomic(args.out / "gate.json", gate.to_dict())
    report = gate_report(table, gate)
    write_text_atomic(args.out / "figures.csv", table.to_csv(index=False))
    write_text_atomic(args.out / "report.csv", report.to_csv(index=False))
    write_text_atomic(
        args.out / "report.md", report.drop(columns="flagged_ids").to_markdown(index=False) + "\n"
    )
    print(f"gate {source}:", gate.to_dict())
    print(report.drop(columns="flagged_ids").to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
