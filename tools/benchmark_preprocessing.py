"""Speed of each preprocessing step and of the whole chain on this machine (prints numbers).

Two profiles: ``demo`` runs the config as it is; ``paper`` switches to the paper's sizes (the
segmentation model's test input resized to 320x320, aligned frames of 224x224) with the same
weights. Without ``--video`` a 60 s, 30 fps, 320x240 synthetic video is rendered once.

Example::

    python tools/benchmark_preprocessing.py --config \
        configs/preprocess/preprocess_unet-c16-seg_res18-192-pose_farneback-k30-s3.75-112_synthetic.py
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

from gm_plugins.apis.preprocessing import load_preprocess_pipeline
from gm_plugins.datasets.preprocessing import build_preprocess_pipeline
from gm_plugins.datasets.transforms import OpticalFlow
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
    """The same chain at the paper's sizes: 320x320 segmentation input, 224x224 output."""
    steps = copy.deepcopy(pipeline_config)
    for step in steps:
        if step["type"] == "BackgroundRemoval":
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


def report(profile: str, pipeline, video: Path) -> None:
    time_steps(pipeline, video)  # warm-up: loads the models once, as a long run would
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
    for algorithm in ("farneback", "dis", "tvl1"):
        start = time.perf_counter()
        OpticalFlow(algorithm=algorithm)(dict(imgs=results["imgs"]))
        seconds = time.perf_counter() - start
        print(f"  flow {algorithm:13s} {seconds:7.2f} s  {(kept - 1) / seconds:8.1f} pairs/s")


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    video = args.video or render_video(DEFAULT_VIDEO)
    steps = load_preprocess_pipeline(args.config).steps
    print(f"torch threads: {torch.get_num_threads()}, video: {video}")
    with tempfile.TemporaryDirectory() as folder:
        for profile in args.profiles:
            profile_steps = steps if profile == "demo" else paper_sizes(steps, Path(folder))
            report(profile, build_preprocess_pipeline(profile_steps), video)
    return 0


if __name__ == "__main__":
    sys.exit(main())
