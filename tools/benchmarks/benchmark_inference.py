"""Seconds from a video to its decision, per stage, with models loaded once.

Renders one synthetic infant (``--seconds`` long, 30 fps, 320x240; the generator's default
look) and the same video enlarged to 1920x1080, then classifies each ``--repeats`` times with
every given bundle and prints the median seconds of each stage (preprocess: decode, background
removal, alignment, flow; classify: windows through the classifier; images: the report's
contact sheet) and the total, and the 1080p / 240p ratio. Models load before timing.

Example::

    CHAIN=configs/preprocess/preprocess_unet-c16-seg_res18-192-pose_farneback-k30-s3.75-112_synthetic.py
    python tools/benchmarks/benchmark_inference.py --bundle work_dirs/demo/bundle --timing-bundle \
        $CHAIN configs/gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import gm_plugins  # noqa: F401
from gm_plugins.apis.inference import GMInferencer, init_gm_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", nargs="*", default=[], help="bundle folders or .zip")
    parser.add_argument(
        "--timing-bundle",
        nargs=2,
        action="append",
        default=[],
        metavar=("CHAIN", "CLASSIFIER"),
        help="also time a bundle of this chain config and classifier config with random "
        "weights (timing only: the work per frame does not depend on the weights), e.g. for "
        "a chain whose models are not trained on this machine",
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--videos", type=Path, default=None, help="keep the videos here")
    parser.add_argument("--no-1080p", action="store_true", help="skip the 1920x1080 video")
    parser.add_argument(
        "--segmentation-backends",
        nargs="+",
        default=["pytorch"],
        choices=["pytorch", "onnxruntime"],
        help="time each bundle with its segmentation network on each of these",
    )
    return parser.parse_args(argv)


def make_videos(folder: Path, seconds: float, large: bool) -> dict[str, Path]:
    """One synthetic infant at 320x240 and, with ``large``, enlarged to 1920x1080."""
    from gm_plugins.datasets.synthetic import GeneratorConfig, generate_dataset
    from gm_plugins.datasets.synthetic.writer import encode_video
    from gm_plugins.preprocess.transforms.decoding import iter_sampled_frames

    data = folder / "synthetic"
    config = GeneratorConfig(subjects=1, seconds=seconds, prep_subjects=0, seed=7)
    if not (data / "meta.json").is_file():
        generate_dataset(data, config, progress=False)
    small = next((data / "videos").glob("*.mp4"))
    videos = {"320x240": small}
    if large:
        import cv2

        big = folder / "infant_1920x1080.mp4"
        if not big.is_file():
            frames = (
                cv2.resize(frame, (1920, 1080), interpolation=cv2.INTER_CUBIC)
                for _, _, frame in iter_sampled_frames(small, None, frame_step=1)
            )
            encode_video(big, frames, 30)
        videos["1920x1080"] = big
    return videos


def random_weight_bundle(chain: str, classifier: str, folder: Path) -> Path:
    """A bundle of ``chain`` + ``classifier`` whose models keep their random initial weights."""
    import torch
    from mmengine.config import Config
    from mmengine.runner import save_checkpoint

    from gm_plugins.deploy.bundle import export_bundle
    from gm_plugins.models.loading import load_recognizer
    from gm_plugins.preprocess import model_runners as openmmlab_models
    from gm_plugins.preprocess.chain import read_chain_config

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cfg = read_chain_config(chain)
    libraries = {"BackgroundRemoval": "mmseg", "PoseAlignment": "mmpose"}
    steps = []
    for step in cfg.preprocess_pipeline:
        step = dict(step)
        library = libraries.get(step["type"])
        if library is not None:
            model = openmmlab_models.load_model(library, step["config"])
            weights = folder / f"{library}_random.pth"
            save_checkpoint({"state_dict": model.state_dict(), "meta": {}}, str(weights))
            step["checkpoint"] = str(weights)
        steps.append(step)
    chain_copy = folder / "chain.py"
    Config(dict(default_scope="mmaction", preprocess_pipeline=steps)).dump(str(chain_copy))
    recognizer = load_recognizer(classifier)
    weights = folder / "classifier_random.pth"
    save_checkpoint({"state_dict": recognizer.state_dict(), "meta": {}}, str(weights))
    name = f"{Path(chain).stem} (random weights)"
    return export_bundle(classifier, weights, folder / "bundle", preprocess_config=chain_copy,
                         name=name, overwrite=True)  # fmt: skip


def time_bundle(
    bundle: str, videos: dict[str, Path], repeats: int, backend: str = "pytorch"
) -> dict[str, dict]:
    inferencer = GMInferencer(init_gm_model(bundle, segmentation_backend=backend), keep_images=True)
    inferencer(next(iter(videos.values())))  # warm-up: models, first-call allocations
    table = {}
    for size, video in videos.items():
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            result = inferencer.classify(video)
            total = time.perf_counter() - started
            runs.append(dict(result["timings_s"], total=total))
        table[size] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        table[size]["decision"] = result["decision"]
        table[size]["windows"] = len(result["windows"])
    return table


def label(bundle: str) -> str:
    from gm_plugins.deploy.bundle import load_bundle

    return load_bundle(bundle).name


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    folder = args.videos or Path(tempfile.mkdtemp(prefix="gm_infer_bench_"))
    folder.mkdir(parents=True, exist_ok=True)
    videos = make_videos(folder, args.seconds, not args.no_1080p)
    print(f"{args.seconds:g} s 30 fps videos in {folder}; torch threads {args.threads}; "
          f"median of {args.repeats}")  # fmt: skip
    header = "| bundle | video | preprocess s | classify s | images s | total s | windows |"
    print(header + "\n|---|---|---|---|---|---|---|")
    bundles = list(args.bundle)
    for index, (chain, classifier) in enumerate(args.timing_bundle):
        bundles.append(str(random_weight_bundle(chain, classifier, folder / f"timing_{index}")))
    for bundle, backend in itertools.product(bundles, args.segmentation_backends):
        table = time_bundle(bundle, videos, args.repeats, backend)
        name = label(bundle) + ("" if backend == "pytorch" else f", {backend} segmentation")
        for size, row in table.items():
            print(f"| {name} | {size} | {row['preprocess']:.2f} | "
                  f"{row['classify']:.2f} | {row.get('images', np.nan):.2f} | "
                  f"{row['total']:.2f} | {row['windows']} |")  # fmt: skip
        if len(table) == 2:
            ratio = table["1920x1080"]["total"] / table["320x240"]["total"]
            print(f"| {name} | 1080p / 240p | | | | {ratio:.2f}x | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
