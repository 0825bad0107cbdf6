"""The main job on synthetic infants: data, preprocessing models, cache, classifier, metrics.

Every stage runs the command a user would run by hand (printed before it runs), and a second
run reuses the stages that finished (delete ``work_dirs/demo/stages/<stage>.done`` to redo one).
Run it with ``make demo``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA_ROOT = "data/gm_synthetic"
CACHE_ROOT = f"{DATA_ROOT}/cache_demo"
SEG_CONFIG = "configs/preprocess/fcn_unet-s5-c8_b4-4k_synthetic-seg-160x120.py"
POSE_CONFIG = "configs/preprocess/td-hm_res18-c32_dark-b16-20e_synthetic-pose-128x128.py"
PREPROCESS_CONFIG = (
    "configs/preprocess/preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py"
)
CLASSIFIER_CONFIG = "configs/gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"
SUMMARY_KEYS = ("accuracy", "precision", "recall", "f1", "mcc", "kappa", "roc_auc")


@dataclass
class Stage:
    """One step of the demo: a command and the marker file that says it finished."""

    name: str
    command: list[str]
    marker: Path
    seconds: float = 0.0
    reused: bool = False


def python_command(*args: str) -> list[str]:
    return [sys.executable, *[str(arg) for arg in args]]


def single_thread_env() -> dict:
    """One BLAS/torch thread per process: two processes share the 2 cores without contention."""
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def start(stage: Stage, log: Path | None) -> subprocess.Popen | None:
    if stage.marker.exists():
        stage.reused = True
        print(f"[{stage.name}] already done ({stage.marker.name}); reusing it", flush=True)
        return None
    print(f"[{stage.name}] $ {shlex.join(stage.command)}", flush=True)
    stage.seconds = time.perf_counter()
    output = None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        output = log.open("w")
        print(f"[{stage.name}] log: {log}", flush=True)
    return subprocess.Popen(
        stage.command, cwd=ROOT, env=single_thread_env(), stdout=output, stderr=output
    )


def finish(stage: Stage, process: subprocess.Popen | None, log: Path | None) -> None:
    if process is None:
        return
    code = process.wait()
    stage.seconds = time.perf_counter() - stage.seconds
    if code != 0:
        hint = f"; the end of {log}:\n" + "".join(log.open().readlines()[-15:]) if log else ""
        raise SystemExit(
            f"demo stage '{stage.name}' failed (exit {code}){hint}\n"
            "Fix it and run `make demo` again: finished stages are reused."
        )
    stage.marker.parent.mkdir(parents=True, exist_ok=True)
    stage.marker.write_text(json.dumps(dict(seconds=stage.seconds)))
    print(f"[{stage.name}] done in {stage.seconds:.0f} s", flush=True)


def run_in_parallel(stages: list[Stage], log_dir: Path) -> None:
    """Run stages side by side (one core each), printing their last log line now and then."""
    logs = [log_dir / f"{stage.marker.stem}.log" for stage in stages]
    processes = [start(stage, log) for stage, log in zip(stages, logs, strict=True)]
    running = [i for i, process in enumerate(processes) if process is not None]
    last_report = time.perf_counter()
    while running:
        time.sleep(1)
        for i in [i for i in running if processes[i].poll() is not None]:
            finish(stages[i], processes[i], logs[i])  # records each stage's own duration
            running.remove(i)
        if running and time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            for i in running:
                lines = logs[i].read_text(errors="replace").strip().splitlines()
                print(f"[{stages[i].name}] {lines[-1][:150] if lines else 'starting'}", flush=True)


def latest_checkpoint(work_dir: Path) -> Path:
    """The best checkpoint (by validation cross-entropy) if saved, else the last one."""
    from gm_plugins.apis.runner import best_or_last_checkpoint

    return Path(best_or_last_checkpoint(work_dir))


def report(metrics_file: Path, classifier_dir: Path, out_dir: Path) -> None:
    from gm_plugins.apis.reports import plot_confusion_matrix, plot_training_curve

    metrics = json.loads(metrics_file.read_text())
    print("\nInfant-level and window-level results on held-out synthetic infants (test fold):")
    print(f"| metric | infant ({metrics['subject/num_subjects']}) | window "
          f"({metrics['window/num_windows']}) |")  # fmt: skip
    print("|---|---|---|")
    for key in SUMMARY_KEYS:
        print(f"| {key} | {metrics[f'subject/{key}']:.3f} | {metrics[f'window/{key}']:.3f} |")
    classes = ("WMs", "FMs", "PR")
    matrix_png = plot_confusion_matrix(
        metrics["subject/confusion_matrix"], classes, out_dir / "confusion_matrix.png",
        "infant-level confusion (test fold)",
    )  # fmt: skip
    curve_png = plot_training_curve(classifier_dir, out_dir / "training_curve.png")
    print(f"\nwrote {matrix_png} and {curve_png}")


def build_stages(work_dir: Path, workers: int) -> dict[str, Stage]:
    stage_dir = work_dir / "stages"
    return dict(
        data=Stage(
            "1/6 synthetic infants",
            python_command("tools/make_synthetic_dataset.py", "--out", DATA_ROOT, "--subjects", 48,
                           "--prep-subjects", 240, "--prep-frames", 6, "--workers", workers),
            stage_dir / "data.done",
        ),
        segmentation=Stage(
            "2/6 segmentation model", python_command("tools/train.py", SEG_CONFIG),
            stage_dir / "segmentation.done",
        ),
        pose=Stage(
            "3/6 pose model", python_command("tools/train.py", POSE_CONFIG),
            stage_dir / "pose.done",
        ),
        preprocess=Stage(
            "4/6 preprocessing: background removal, alignment, optical flow",
            python_command("tools/preprocess_videos.py", PREPROCESS_CONFIG, "--data-root",
                           DATA_ROOT, "--out", CACHE_ROOT, "--workers", workers),
            stage_dir / "preprocess.done",
        ),
        classifier=Stage(
            "5/6 two-stream classifier",
            python_command("tools/train.py", CLASSIFIER_CONFIG, "--work-dir",
                           work_dir / "two_stream", "--resume"),
            stage_dir / "classifier.done",
        ),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work-dir", default="work_dirs/demo", type=Path)
    parser.add_argument("--workers", type=int, default=2, help="parallel processes for data")
    args = parser.parse_args(argv)
    work_dir = args.work_dir if args.work_dir.is_absolute() else ROOT / args.work_dir
    stages = build_stages(work_dir, args.workers)
    begin = time.perf_counter()
    for name in ("data",):
        finish(stages[name], start(stages[name], None), None)
    run_in_parallel([stages["segmentation"], stages["pose"]], work_dir / "logs")
    for name in ("preprocess", "classifier"):
        finish(stages[name], start(stages[name], None), None)

    classifier_dir = work_dir / "two_stream"
    metrics_file = work_dir / "test_metrics.json"
    test = Stage(
        "6/6 test on held-out infants",
        python_command("tools/test.py", CLASSIFIER_CONFIG, latest_checkpoint(classifier_dir),
                       "--work-dir", work_dir / "test", "--metrics-out", metrics_file),
        work_dir / "stages" / "test.done",
    )  # fmt: skip
    test.marker.unlink(missing_ok=True)  # always re-test: it is quick and prints the table
    finish(test, start(test, None), None)
    report(metrics_file, classifier_dir, work_dir)

    print("\nStage times:")
    for stage in [*stages.values(), test]:
        print(f"  {stage.name:<64} {'reused' if stage.reused else f'{stage.seconds:.0f} s'}")
    print(f"  {'total':<64} {time.perf_counter() - begin:.0f} s")


if __name__ == "__main__":
    main()
