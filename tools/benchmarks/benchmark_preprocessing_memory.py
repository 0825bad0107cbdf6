"""Peak memory and time of preprocessing long and large recordings (prints numbers).

Each video is preprocessed into a scratch cache by a fresh worker process, exactly as
``tools/data/preprocess_videos.py`` does (the streaming driver); the peak resident set size of that
process (``VmHWM``) and its wall time are printed. ``--in-memory`` also runs the whole-clip
in-memory driver for comparison (it needs memory proportional to the video).

Without ``--video``, two synthetic recordings are rendered once into ``work_dirs/``: 60 s at
1920x1080 and 20 minutes at 640x480, both 30 fps.

Example::

    python tools/benchmarks/benchmark_preprocessing_memory.py \
        --config configs/preprocess/preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import gm_plugins  # noqa: F401

RENDER_DIR = Path("work_dirs/benchmark_preprocessing_memory")
DEFAULT_VIDEOS = {  # name -> (seconds, width, height)
    "1080p_60s": (60.0, 1920, 1080),
    "640x480_20min": (1200.0, 640, 480),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="config file holding preprocess_pipeline")
    parser.add_argument("--video", type=Path, nargs="*", default=None, help="videos to measure")
    parser.add_argument("--in-memory", action="store_true", help="also time the in-memory driver")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the worker")
    return parser.parse_args(argv)


def render(name: str, seconds: float, width: int, height: int, fps: int = 30) -> Path:
    """One synthetic infant at the given length and size, encoded frame by frame (no ground
    truth kept, so rendering a long recording needs little memory); rendered once, then reused."""
    path = RENDER_DIR / f"{name}.mp4"
    if path.is_file():
        return path
    from gm_plugins.datasets.synthetic import SyntheticSubject, make_specs
    from gm_plugins.datasets.synthetic.writer import encode_video
    from gm_plugins.utils.io import atomic_path

    spec = make_specs(1, 0, 0.0, 2, "bench")[0]
    num_frames = round(seconds * fps)
    subject = SyntheticSubject(spec, (width, height), fps, num_frames)
    print(f"rendering {path} ({seconds:g} s, {width}x{height}) once ...", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        encode_video(temporary, (subject.render(t)[0] for t in range(num_frames)), fps)
    return path


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(config: str, video: str, in_memory: bool, threads: int, queue) -> None:
    """Child process: preprocess ``video`` once, report (seconds, peak MiB, frames, fallback)."""
    import torch

    from gm_plugins.preprocess.chain import load_preprocess_pipeline
    from gm_plugins.preprocess.streaming import (
        build_preprocess_pipeline,
        preprocess_to_cache,
        preprocess_video,
    )

    torch.set_num_threads(threads)
    chain = build_preprocess_pipeline(load_preprocess_pipeline(config).steps)
    before = peak_rss_mib()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        if in_memory:
            results = preprocess_video(chain, video)
            frames, fallback = len(results["imgs"]), results.get("alignment_fallback")
        else:
            meta = preprocess_to_cache(chain, video, folder, "bench")
            frames, fallback = meta["num_frames"], meta["quality"]["fallback"]
    queue.put((time.perf_counter() - start, before, peak_rss_mib(), frames, fallback))


def main(argv: list[str] | None = None) -> int:
    from gm_plugins.preprocess.transforms.decoding import probe_video

    args = parse_args(argv)
    videos = args.video or [render(name, *spec) for name, spec in DEFAULT_VIDEOS.items()]
    context = multiprocessing.get_context("spawn")
    drivers = ["streaming"] + (["in-memory"] if args.in_memory else [])
    print(f"config: {args.config}\ntorch threads per worker: {args.threads}")
    for video in videos:
        info = probe_video(video)
        print(
            f"\n{video}: {info['width']}x{info['height']}, {info['fps']:g} fps, "
            f"{info['duration']:.0f} s"
        )
        for driver in drivers:
            queue = context.Queue()
            process = context.Process(
                target=measure,
                args=(args.config, str(video), driver == "in-memory", args.threads, queue),
            )
            process.start()
            process.join()
            if process.exitcode != 0:
                print(f"  {driver:10s} worker died with exit code {process.exitcode}")
                continue
            seconds, before, peak, frames, fallback = queue.get()
            print(
                f"  {driver:10s} {seconds:7.1f} s ({info['duration'] / seconds:5.1f}x real time)"
                f"  peak RSS {peak:7.0f} MiB (after loading the stack {before:.0f} MiB)"
                f"  {frames} cached frames, fallback {fallback}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
