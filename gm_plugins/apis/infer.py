"""Classify new videos with a model bundle: a decision per infant and a report per video.

Writes ``OUT/<name>/result.json`` and ``OUT/<name>/report.html`` per video, and
``OUT/summary.csv`` and ``OUT/index.html`` for the batch. A video that cannot be read gets its
error in the summary and the others go on; the exit code is 1 when any video failed.

Example::

    python tools/infer.py my_videos/ --bundle work_dirs/demo/bundle --out work_dirs/infer
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import gm_plugins  # noqa: F401
from gm_plugins.apis.inference import GMInferencer, find_videos, init_gm_model
from gm_plugins.deploy.bundle import BundleError

STAGES = ("preprocess", "classify", "images")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="+", help="video files or folders of videos")
    parser.add_argument("--bundle", required=True, help="bundle folder or .zip (export_bundle)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--min-probability",
        type=float,
        default=None,
        help="override the bundle's abstention threshold on the top probability",
    )
    parser.add_argument("--no-images", action="store_true", help="reports without stage images")
    parser.add_argument(
        "--segmentation-backend",
        choices=["pytorch", "onnxruntime"],
        default=None,
        help="run the segmentation network in PyTorch or ONNX Runtime (same masks within float "
        "rounding, ONNX Runtime about 2x faster on CPUs; exported on first use into "
        "$GM_PLUGINS_ONNX_CACHE or ~/.cache/gm_plugins/onnx); default: as the bundle's chain",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    args = parse_args(argv)
    videos = find_videos(args.videos)
    try:
        model = init_gm_model(
            args.bundle, device=args.device, segmentation_backend=args.segmentation_backend
        )
    except (BundleError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.min_probability is not None:
        rules = model.abstention
        model.abstention = dataclasses.replace(rules, min_probability=args.min_probability)
    inferencer = GMInferencer(model, keep_images=not args.no_images)
    stages = STAGES[:2] if args.no_images else STAGES
    results = []
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), transient=False
    ) as progress:
        task = progress.add_task("videos", total=len(videos) * len(stages))

        def on_stage(name: str, stage: str) -> None:
            done = len(results) * len(stages) + stages.index(stage)
            progress.update(task, completed=done, description=f"{name}: {stage}")

        for video in videos:
            results.extend(inferencer([video], progress=on_stage))
            progress.update(task, completed=len(results) * len(stages))
    from gm_plugins.apis.infer_outputs import write_outputs

    write_outputs(results, args.out, model)
    failed = [r for r in results if r["status"] != "ok"]
    for result in results:
        if result["status"] == "ok":
            confidence = result["confidence"]
            shown = f"{confidence:.2f}" if confidence is not None else "-"
            print(f"{result['name']}: {result['decision']} (p={shown})")
        else:
            print(f"{result['name']}: FAILED {result['error']}")
    print(f"reports: {args.out / 'index.html'}  summary: {args.out / 'summary.csv'}")
    if failed:
        print(f"{len(failed)} of {len(results)} video(s) failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
