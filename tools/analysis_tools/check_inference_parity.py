"""Check that a bundle classifies raw videos exactly as tools/test.py scores their cache.

Reads the predictions ``tools/test.py CONFIG CHECKPOINT --dump PREDICTIONS.pkl`` wrote for the
test infants of a cached dataset, classifies the same infants' raw videos with the bundle
(``GMInferencer``: preprocessing in memory) and prints the largest absolute difference of any
window probability, and how many windows and infants were compared.

Example::

    python tools/test.py CONFIG CHECKPOINT --dump work_dirs/demo/test/predictions.pkl
    python tools/analysis_tools/check_inference_parity.py CONFIG \
        work_dirs/demo/test/predictions.pkl \
        --bundle work_dirs/demo/bundle
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

import gm_plugins  # noqa: F401
from gm_plugins.apis.inference import GMInferencer
from gm_plugins.datasets.subjects import read_subjects
from gm_plugins.utils.config import load_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="the classifier config tools/test.py ran")
    parser.add_argument("predictions", type=Path, help="the .pkl of tools/test.py --dump")
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    expected: dict[str, dict[int, np.ndarray]] = {}
    for sample in pickle.loads(args.predictions.read_bytes()):
        scores = np.asarray(sample["pred_score"], np.float64)
        expected.setdefault(str(sample["subject_id"]), {})[int(sample["window_index"])] = scores
    dataset = load_config(args.config).test_dataloader.dataset
    root = Path(dataset.data_root)
    videos = {
        row["subject_id"]: root / row["video"]
        for row in read_subjects(root / dataset.ann_file, root)
        if row["subject_id"] in expected
    }
    inferencer = GMInferencer(args.bundle)
    largest, windows = 0.0, 0
    for subject_id, video in sorted(videos.items()):
        result = inferencer.classify(video)
        got = {w["index"]: w["probabilities"] for w in result["windows"]}
        if set(got) != set(expected[subject_id]):
            print(f"{subject_id}: windows differ: {sorted(got)} vs {sorted(expected[subject_id])}")
            return 1
        for index, scores in expected[subject_id].items():
            row = np.array([got[index][name] for name in result["class_names"]])
            largest = max(largest, float(np.abs(row - scores).max()))
            windows += 1
    verdict = "OK" if largest <= args.tolerance else "ABOVE TOLERANCE"
    print(f"{len(videos)} infants, {windows} windows: largest |difference| of a window "
          f"probability {largest:.2e} ({verdict}, tolerance {args.tolerance:g})")  # fmt: skip
    return 0 if largest <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
