"""Run a shipped benchmark end to end: data, preprocessing models, caches, cross-validation.

Experiments (``make table1``, ``make confounding``, ``make preprocessing``):

* ``table1``: the paper's Table 1 protocol on the synthetic default dataset (48 infants,
  environment independent of class): stratified 5-fold cross-validation by infant of the
  two-stream model, its ablations (only spatial, only temporal, late fusion, without
  background removal, without alignment) and the baselines (C3D, TSN, CNN + LSTM, ST-GCN).
* ``confounding``: the paper's central claim. Training infants (data/gm_confound) are
  recorded in environments tied to their class; the test infants (all of data/gm_synthetic)
  are not. The two-stream model is cross-validated on the confounded infants with and without
  background removal and alignment, and every fold's model is tested on the independent ones.
* ``preprocessing``: the preprocessing networks against the ground truth. The evaluation-grade
  segmentation and pose models train on the extra infants of data/gm_preprocessing (and the
  pose model first on those of data/gm_synthetic); tools/evaluate_preprocessing.py then scores
  mask IoU, PCK and alignment on the 48 infants of data/gm_synthetic, which they never saw.

Every step runs the command a user would run by hand (printed first) and skips work that is
already done: existing datasets and checkpoints, cached videos, finished folds.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREPROCESS = "configs/preprocess"


def _model(name: str, checkpoint: str) -> tuple[str, str]:
    """(config, checkpoint) of a model trained by tools/train.py into work_dirs/<name>/."""
    return f"{PREPROCESS}/{name}.py", f"work_dirs/{name}/{checkpoint}"


#: The demo's preprocessing models, which the demo caches use.
DEMO_MODELS = (
    _model("fcn_unet-s5-c8_b4-4k_synthetic-seg-160x120", "iter_4000.pth"),
    _model("td-hm_res18-c32_dark-b16-20e_synthetic-pose-128x128", "epoch_20.pth"),
)
#: The evaluation-grade ones, in training order (the second pose model starts from the first).
EVALUATION_MODELS = (
    _model("fcn_unet-s5-c16_b4-12k_synthetic-seg-160x120", "iter_12000.pth"),
    _model("td-hm_res18-c32_dark-b16-20e_synthetic-pose-192x192", "epoch_20.pth"),
    _model("td-hm_res18-c32_dark-b16-20e-ft60e_synthetic-pose-192x192", "epoch_60.pth"),
)
EVALUATION_PIPELINE = (
    f"{PREPROCESS}/preprocess_unet-c16-seg_res18-192-pose_farneback-k30-s3.75-112_synthetic.py"
)

DATASETS = {
    "data/gm_synthetic": ["--subjects", "48", "--prep-subjects", "240", "--prep-frames", "6"],
    "data/gm_confound": ["--subjects", "48", "--seed", "1", "--confound", "1.0",
                         "--prep-subjects", "0"],
    "data/gm_preprocessing": ["--subjects", "3", "--prep-subjects", "1200", "--prep-frames", "3"],
}  # fmt: skip
#: cache folder name -> preprocessing config (all at the demo's 64 px).
CHAINS = {
    "cache_demo": f"{PREPROCESS}/preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py",
    "cache_demo_no-bg": f"{PREPROCESS}/preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_"
    "no-background-removal_demo.py",
    "cache_demo_no-align": f"{PREPROCESS}/preprocess_unet-seg_farneback-64_no-alignment_demo.py",
    "cache_demo_none": f"{PREPROCESS}/preprocess_farneback-64_no-background-removal_"
    "no-alignment_demo.py",
    "cache_demo_skeleton": f"{PREPROCESS}/preprocess_unet-seg_res18-pose_farneback-k5-s3.75-64_"
    "skeleton_demo.py",
}


@dataclass(frozen=True)
class Experiment:
    configs: tuple[str, ...] = ()  # cross-validated
    caches: tuple[tuple[str, str], ...] = ()  # (data root, cache folder name)
    datasets: tuple[str, ...] = ()  # beyond the caches' data roots
    models: tuple[tuple[str, str], ...] = DEMO_MODELS  # (config, checkpoint), trained in order
    pipeline: str | None = None  # evaluated against the ground truth of data/gm_synthetic


GM = "configs/gm"
BASELINES = "configs/baselines"
CONFOUNDING = "configs/confounding"
EXPERIMENTS = {
    "table1": Experiment(
        configs=(
            f"{GM}/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py",
            f"{GM}/spatial-only_r18-3stage_demo_gm-synthetic.py",
            f"{GM}/temporal-only_r18-3stage_demo_gm-synthetic.py",
            f"{GM}/two-stream_r18-3stage-late-fusion_demo_gm-synthetic.py",
            f"{GM}/two-stream_r18-3stage-concat-fusion_no-background-removal_demo_gm-synthetic.py",
            f"{GM}/two-stream_r18-3stage-concat-fusion_no-alignment_demo_gm-synthetic.py",
            f"{BASELINES}/c3d_base16_demo_gm-synthetic.py",
            f"{BASELINES}/tsn-rgb_r18-3stage_demo_gm-synthetic.py",
            f"{BASELINES}/cnn-lstm_r18-3stage_demo_gm-synthetic.py",
            f"{BASELINES}/stgcn-c16-s6_joint-motion_5s-windows_demo_gm-synthetic.py",
        ),
        caches=tuple(
            ("data/gm_synthetic", name)
            for name in (
                "cache_demo",
                "cache_demo_no-bg",
                "cache_demo_no-align",
                "cache_demo_skeleton",
            )
        ),
    ),
    "confounding": Experiment(
        configs=tuple(
            f"{CONFOUNDING}/two-stream_r18-3stage-concat-fusion{variant}_demo_gm-confound.py"
            for variant in ("", "_no-preprocessing", "_no-background-removal", "_no-alignment")
        ),
        caches=tuple(
            (root, name)
            for root in ("data/gm_confound", "data/gm_synthetic")
            for name in ("cache_demo", "cache_demo_no-bg", "cache_demo_no-align", "cache_demo_none")
        ),
    ),
    "preprocessing": Experiment(
        datasets=("data/gm_synthetic", "data/gm_preprocessing"),
        models=EVALUATION_MODELS,
        pipeline=EVALUATION_PIPELINE,
    ),
}


def run(*command: str | Path) -> None:
    words = [str(word) for word in command]
    print(f"\n$ {shlex.join(words)}", flush=True)
    subprocess.run(words, cwd=ROOT, check=True)


def python(script: str, *args: str | Path) -> None:
    run(sys.executable, script, *args)


def prepare(experiment: Experiment, workers: int) -> None:
    """Datasets, preprocessing models and caches the experiment reads (each only if missing)."""
    roots = {root for root, _ in experiment.caches} | set(experiment.datasets)
    for root in sorted(roots):
        if not (ROOT / root / "meta.json").is_file() or not _complete(ROOT / root):
            python("tools/make_synthetic_dataset.py", "--out", root, *DATASETS[root],
                   "--workers", str(workers))  # fmt: skip
    for config, checkpoint in experiment.models:
        if not (ROOT / checkpoint).is_file():
            python("tools/train.py", config)
    for root, name in experiment.caches:
        python("tools/preprocess_videos.py", CHAINS[name], "--data-root", root,
               "--out", f"{root}/{name}", "--workers", str(workers), "--quiet")  # fmt: skip


def _complete(root: Path) -> bool:
    return bool(json.loads((root / "meta.json").read_text()).get("complete"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--work-dir", type=Path, help="default: work_dirs/<experiment>")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="folds trained at once")
    parser.add_argument("--workers", type=int, default=2, help="processes for data and caches")
    args = parser.parse_args(argv)
    experiment = EXPERIMENTS[args.experiment]
    work_dir = args.work_dir or Path("work_dirs") / args.experiment
    start = time.perf_counter()
    try:
        prepare(experiment, args.workers)
        if experiment.pipeline is not None:
            python("tools/evaluate_preprocessing.py", experiment.pipeline,
                   "--data-root", "data/gm_synthetic", "--out", work_dir)  # fmt: skip
        if experiment.configs:
            python("tools/cross_validate.py", *experiment.configs, "--folds", str(args.folds),
                   "--seed", str(args.seed), "--repeats", str(args.repeats), "--jobs",
                   str(args.jobs), "--work-dir", work_dir)  # fmt: skip
    except subprocess.CalledProcessError as error:
        print(f"\n{args.experiment}: step failed (exit code {error.returncode}): "
              f"{shlex.join(map(str, error.cmd))}", file=sys.stderr)  # fmt: skip
        return 1
    print(f"\n{args.experiment}: {time.perf_counter() - start:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
