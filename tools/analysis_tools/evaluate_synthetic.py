"""Check what the synthetic classes encode, with cross-validated subject-level accuracies.

Generates two datasets that differ only in --confound (0 and 1) and prints, for each, the accuracy
of a random forest on ground-truth keypoint features (should be high), on the mean limb speed alone
(a single frame-level statistic; should be well below it) and on background-only features (chance
at P=0, high at P=1).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from gm_plugins.datasets.synthetic import GeneratorConfig, generate_dataset
from gm_plugins.datasets.synthetic.features import cross_validated_accuracy, dataset_features


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=90, help="infants per dataset")
    parser.add_argument("--seconds", type=float, default=20.0, help="video length")
    parser.add_argument("--fps", type=int, default=30, help="frames per second")
    parser.add_argument(
        "--size",
        default="160x120",
        help="frame size WxH (background features use the decoded video)",
    )
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    parser.add_argument("--folds", type=int, default=5, help="stratified cross-validation folds")
    parser.add_argument(
        "--repeats", type=int, default=3, help="cross-validation repeats with different fold seeds"
    )
    parser.add_argument("--workers", type=int, default=2, help="generator processes")
    parser.add_argument(
        "--work-dir", type=Path, help="keep the datasets here (default: a temporary directory)"
    )
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    base = GeneratorConfig(
        subjects=args.subjects,
        seconds=args.seconds,
        fps=args.fps,
        width=width,
        height=height,
        seed=args.seed,
        prep_subjects=0,
    )
    with tempfile.TemporaryDirectory() as temporary:
        work_dir = args.work_dir or Path(temporary)
        print(
            f"{args.subjects} infants x {args.seconds:g} s at {args.fps} fps, {args.size}; "
            f"{args.folds}-fold CV x {args.repeats}, chance = 0.333"
        )
        print(f"{'confound':>8} {'keypoints':>14} {'mean speed':>14} {'background':>14}")
        for confound in (0.0, 1.0):
            config = dataclasses.replace(base, confound=confound)
            directory = work_dir / f"confound_{confound:g}"
            generate_dataset(directory, config, workers=args.workers, progress=False)
            features = dataset_features(directory)
            cells = []
            for name in ("keypoint", "speed", "background"):
                scores = [
                    cross_validated_accuracy(features[name], features["labels"], args.folds, seed)
                    for seed in range(args.repeats)
                ]
                cells.append(f"{np.mean(scores):.3f} +- {np.std(scores):.3f}")
            print(f"{confound:>8g} " + " ".join(f"{cell:>14}" for cell in cells))


if __name__ == "__main__":
    main()
