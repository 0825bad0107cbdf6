"""The main job on synthetic infants: data -> preprocessing models -> cache -> classifier -> metrics.

Every stage runs the same command a user would run by hand (printed before it runs), and a
second run reuses the stages that finished. Run it with ``make demo``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA_ROOT = "data/gm_synthetic"
SEG_CONFIG = "configs/preprocess/fcn_unet-s4-tiny_10e_gm-synthetic-seg.py"
POSE_CONFIG = "configs/preprocess/td-hm_res18-tiny_30e_gm-synthetic-pose.py"
PREPROCESS_CONFIG = "configs/preprocess/preprocess_demo_gm-synthetic.py"
CLASSIFIER_CONFIG = "configs/gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"
CACHE_ROOT = f"{DATA_ROOT}/cache_demo"


@dataclass
class Stage:
    """One step of the demo: a command and the file that proves it finished."""

    name: str
    command: list[str]
    done_marker: Path
    seconds: float = 0.0
    reused: bool = False
    extra: dict = field(default_factory=dict)


def python_command(*args: str) -> list[str]:
    return [sys.executable, *args]


def run_stage(stage: Stage, force: bool) -> None:
    print(f"\n=== {stage.name} ===", flush=True)
    if stage.done_marker.exists() and not force:
        stage.reused = True
        print(f"already done ({stage.done_marker}); delete it to run this stage again")
        return
    print("$ " + shlex.join(stage.command), flush=True)
    start = time.perf_counter()
    result = subprocess.run(stage.command, cwd=ROOT, check=False)
    stage.seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(
            f"demo stage '{stage.name}' failed (exit {result.returncode}); see the output above. "
            "Fix it and run `make demo` again: finished stages are reused."
        )
    stage.done_marker.parent.mkdir(parents=True, exist_ok=True)
    stage.done_marker.write_text(json.dumps(dict(seconds=stage.seconds)))
    print(f"--- {stage.name}: {stage.seconds:.0f} s", flush=True)


def build_stages(work_dir: Path, workers: int) -> list[Stage]:
    seg_dir, pose_dir = work_dir / "segmentation", work_dir / "pose"
    classifier_dir = work_dir / "two_stream"
    return [
        Stage(
            "1/6 synthetic infants",
            python_command("tools/make_synthetic_dataset.py", "--out", DATA_ROOT,
                           "--workers", str(workers)),
            work_dir / "stages" / "data.done",
        ),
        Stage(
            "2/6 segmentation model (background removal)",
            python_command("tools/train.py", SEG_CONFIG, "--work-dir", str(seg_dir)),
            work_dir / "stages" / "segmentation.done",
        ),
        Stage(
            "3/6 pose model (body alignment)",
            python_command("tools/train.py", POSE_CONFIG, "--work-dir", str(pose_dir)),
            work_dir / "stages" / "pose.done",
        ),
        Stage(
            "4/6 preprocessing: remove background, align, optical flow",
            python_command("tools/preprocess_videos.py", PREPROCESS_CONFIG, "--data-root",
                           DATA_ROOT, "--out", CACHE_ROOT, "--workers", str(workers),
                           "--cfg-options",
                           f"segmentation_checkpoint={seg_dir / 'final.pth'}",
                           f"pose_checkpoint={pose_dir / 'final.pth'}"),
            work_dir / "stages" / "preprocess.done",
        ),
        Stage(
            "5/6 two-stream classifier",
            python_command("tools/train.py", CLASSIFIER_CONFIG, "--work-dir",
                           str(classifier_dir), "--resume"),
            work_dir / "stages" / "classifier.done",
        ),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work-dir", default="work_dirs/demo", type=Path)
    parser.add_argument("--workers", type=int, default=2, help="parallel processes for data")
    parser.add_argument("--force", action="store_true", help="run every stage again")
    args = parser.parse_args(argv)
    work_dir = args.work_dir if args.work_dir.is_absolute() else ROOT / args.work_dir
    stages = build_stages(work_dir, args.workers)
    for stage in stages:
        run_stage(stage, args.force)
    print("\nStage times:")
    for stage in stages:
        print(f"  {stage.name:<60} {'reused' if stage.reused else f'{stage.seconds:.0f} s'}")


if __name__ == "__main__":
    main()
