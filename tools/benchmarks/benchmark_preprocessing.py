"""Speed of each preprocessing step and of the whole chain on this machine (prints numbers).

Two profiles: ``demo`` runs the config as it is; ``paper`` switches to the paper's sizes (the
segmentation model's test input resized to 320x320, aligned frames of 224x224) with the same
weights. Without ``--video`` a 60 s, 30 fps, 320x240 synthetic video is rendered once.
``--random-weights`` times a chain whose models are not trained yet (the work per frame does not
depend on the weights); ``--baseline`` first times the same chain with the segmentation model's
own ``test_step`` per batch (``BackgroundRemoval(fast=False)``), in the same process;
``--onnxruntime`` times it again with the segmentation network in ONNX Runtime
(``BackgroundRemoval(backend='onnxruntime')``; exported and parity-checked before timing).

Example::

    python tools/benchmarks/benchmark_preprocessing.py --profiles paper --random-weights \
        --baseline --config \
        configs/preprocess/preprocess_unet-c16-seg_res18-192-pose_farneback-k30-s3.75-112_synthetic.py
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

from gm_plugins.preprocess.chain import load_preprocess_pipeline, read_chain_config
from gm_plugins.preprocess.streaming import build_preprocess_pipeline, preprocess_in_memory
from gm_plugins.preprocess.transforms import OpticalFlow
from gm_plugins.utils.config import load_config

DEFAULT_VIDEO = Path("work_dirs/benchmark_preprocessing/synthetic_60s_320x240.mp4")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="config file holding preprocess_pipeline")
    parser.add_argument("--video", type=Path, default=None, help="video to time (default: render)")
    parser.add_argument(
        "--profiles", nargs="+", default=["demo", "paper"], choices=["demo", "paper"]
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="build the models without their checkpoints (timing only: the work per frame does "
        "not depend on the weights), for chains whose models are not trained yet",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also time each profile with BackgroundRemoval(fast=False) (the model's own "
        "test_step per batch), before the default path, in the same process",
    )
    parser.add_argument(
        "--onnxruntime",
        action="store_true",
        help="also time each profile with BackgroundRemoval(backend='onnxruntime'), after the "
        "default path, in the same process",
    )
    parser.add_argument(
        "--streamed",
        action="store_true",
        help="also time the streaming driver (preprocess_in_memory: the cache's and inference's)",
    )
    parser.add_argument(
        "--flows",
        nargs="*",
        default=["farneback", "dis"],
        choices=["farneback", "dis", "tvl1"],
        help="optical flow algorithms also timed on the aligned frames (tvl1 is slow)",
    )
    parser.add_argument(
        "--profile-out", type=Path, default=None, help="also write a cProfile of each chain here"
    )
    return parser.parse_args(argv)


def render_video(path: Path, seconds: float = 60.0) -> Path:
    """One synthetic infant, ``seconds`` long at 30 fps and 320x240 (cached at ``path``)."""
    if path.is_file():
        return path
    from gm_plugins.datasets.synthetic import GeneratorConfig, make_specs
    from gm_plugins.datasets.synthetic.generate import generate_subject

    config = GeneratorConfig(subjects=1, seconds=seconds, prep_subjects=0)
    spec = make_specs(1, config.seed, config.confound, 2, "bench")[0]
    with tempfile.TemporaryDirectory() as folder:
        generate_subject(spec, config, Path(folder))
        path.parent.mkdir(parents=True, exist_ok=True)
        (Path(folder) / "videos" / f"{spec.subject_id}.mp4").replace(path)
    return path


def paper_sizes(pipeline_config: list, folder: Path) -> list:
    """The same chain at the paper's sizes: 320x320 segmentation input, 224x224 output (a
    packaged segmentation model keeps its own input size)."""
    steps = copy.deepcopy(pipeline_config)
    for step in steps:
        if step["type"] == "BackgroundRemoval" and step.get("config"):
            seg = load_config(step["config"], required=("test_pipeline", "model"))
            for transform in seg.test_pipeline:
                if transform["type"] == "Resize":
                    transform.update(scale=(320, 320), keep_ratio=False)
            seg.model.data_preprocessor.pop("size", None)
            step["config"] = str(folder / "seg_320x320.py")
            seg.dump(step["config"])
        if step["type"] == "PoseAlignment":
            step["out_size"] = 224
    return steps


def time_steps(pipeline, video: Path) -> tuple[list[tuple[str, float, int]], dict]:
    """(step name, seconds, frames it handled) for each step, and the final results."""
    results = dict(filename=str(video), start_index=0, modality="RGB")
    timings = []
    for transform in pipeline.transforms:
        start = time.perf_counter()
        results = transform(results)
        frames = results.get("total_frames", 0) if not timings else len(results["imgs"])
        timings.append((type(transform).__name__, time.perf_counter() - start, frames))
    return timings, results


def load_models(pipeline) -> None:
    """Load the chain's models before timing, as a long run would have them loaded."""
    for transform in pipeline.transforms:
        if hasattr(transform, "runner"):
            transform.runner  # noqa: B018  (loads on first access)
        if getattr(transform, "fast", False):
            transform.fast_runner  # noqa: B018


def report(profile: str, pipeline, video: Path, flows: list[str]) -> float:
    """Time each step on ``video``, print the table and return the whole chain's seconds."""
    load_models(pipeline)
    timings, results = time_steps(pipeline, video)
    total = sum(seconds for _, seconds, _ in timings)
    kept = len(results["imgs"])
    print(
        f"\n[{profile}] {video.name}: {results['total_frames']} source frames, {kept} kept, "
        f"output {results['img_shape'][0]}x{results['img_shape'][1]}"
    )
    for name, seconds, frames in timings:
        unit = "source frames/s" if name == "DecodeFrames" else "frames/s"
        print(f"  {name:18s} {seconds:7.2f} s  {frames / seconds:8.1f} {unit}")
    print(
        f"  {'whole chain':18s} {total:7.2f} s  {kept / total:8.1f} kept frames/s  "
        f"({results['total_frames'] / results['fps'] / total:.1f}x real time: "
        f"{results['total_frames'] / results['fps']:.0f} s of video at {results['fps']:.0f} fps)"
    )
    for algorithm in flows:
        start = time.perf_counter()
        OpticalFlow(algorithm=algorithm)(dict(imgs=results["imgs"]))
        seconds = time.perf_counter() - start
        print(f"  flow {algorithm:13s} {seconds:7.2f} s  {(kept - 1) / seconds:8.1f} pairs/s")
    return total


def with_segmentation(steps: list[dict], **settings) -> list[dict]:
    """The chain with these BackgroundRemoval settings (``fast=False``: the model's own
    test_step per batch; ``backend='onnxruntime'``)."""
    steps = copy.deepcopy(steps)
    for step in steps:
        if step["type"] == "BackgroundRemoval":
            step.update(settings)
    return steps


def export_before_timing(pipeline, video: Path) -> None:
    """Make ONNX Runtime segmentation export its model now, on a frame of the video's size."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    ok, frame = capture.read()
    capture.release()
    if not ok:
        raise ValueError(f"cannot read a frame of {video}")
    for transform in pipeline.transforms:
        if getattr(transform, "backend", "pytorch") == "onnxruntime":
            start = time.perf_counter()
            transform.predict_masks([frame])
            print(f"  (ONNX export and session: {time.perf_counter() - start:.1f} s, not timed)")


def chain_steps(config: str, random_weights: bool) -> list[dict]:
    """The config's ``preprocess_pipeline``; with ``random_weights`` its models lose their
    checkpoints (randomly initialised weights of the same architecture)."""
    if not random_weights:
        return load_preprocess_pipeline(config).steps
    cfg = read_chain_config(config)
    steps = [
        step.to_dict() if hasattr(step, "to_dict") else dict(step)
        for step in cfg.preprocess_pipeline
    ]
    for step in steps:
        if "checkpoint" in step:
            step["checkpoint"] = None
    return steps


def time_streamed(pipeline, video: Path) -> float:
    """Seconds of :func:`preprocess_in_memory` (the driver of the cache and of inference)."""
    start = time.perf_counter()
    preprocess_in_memory(pipeline, video)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    import cProfile

    import torch

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    video = args.video or render_video(DEFAULT_VIDEO)
    steps = chain_steps(args.config, args.random_weights)
    print(f"torch threads: {torch.get_num_threads()}, video: {video}")
    with tempfile.TemporaryDirectory() as folder:
        for profile in args.profiles:
            profile_steps = steps if profile == "demo" else paper_sizes(steps, Path(folder))
            variants = [(profile, profile_steps)]
            if args.baseline:
                baseline = with_segmentation(profile_steps, fast=False)
                variants.insert(0, (f"{profile}, test_step segmentation", baseline))
            if args.onnxruntime:
                variants.append(
                    (
                        f"{profile}, onnxruntime segmentation",
                        with_segmentation(profile_steps, backend="onnxruntime"),
                    )
                )
            totals = {}
            for name, variant_steps in variants:
                pipeline = build_preprocess_pipeline(variant_steps)
                export_before_timing(pipeline, video)
                totals[name] = report(name, pipeline, video, args.flows)
                if args.streamed:
                    seconds = time_streamed(pipeline, video)
                    print(f"  {'streamed (cache)':18s} {seconds:7.2f} s  (both passes)")
                if args.profile_out is not None:
                    args.profile_out.mkdir(parents=True, exist_ok=True)
                    cProfile.runctx(
                        "preprocess_in_memory(pipeline, video)",
                        globals(),
                        dict(pipeline=pipeline, video=video),
                        str(args.profile_out / f"{name.replace(', ', '_').replace(' ', '-')}.prof"),
                    )
            first, *others = totals.items()
            for name, seconds in others:
                print(
                    f"  whole chain {first[1]:.2f} s ({first[0]}) -> {seconds:.2f} s ({name}): "
                    f"{first[1] / seconds:.2f}x"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
