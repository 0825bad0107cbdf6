"""Print the synthetic generator's speed in frames per second on one core.

Stages: rendering alone, rendering + H.264 encoding, and a whole subject as the dataset tool writes
it (rendering, encoding, compressed ground truth).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2

from gm_plugins.datasets.synthetic import (
    GeneratorConfig,
    SyntheticSubject,
    generate_subject,
    make_specs,
)
from gm_plugins.datasets.synthetic.writer import encode_video


def frames_per_second(
    size: tuple[int, int], num_frames: int, subjects: int, stage: str, work_dir: Path
) -> float:
    config = GeneratorConfig(
        subjects=subjects, seconds=num_frames / 30, fps=30, width=size[0], height=size[1]
    )
    specs = make_specs(subjects, seed=0, confound=0.0)
    start = time.perf_counter()
    for spec in specs:
        if stage == "subject":
            generate_subject(spec, config, work_dir)
            continue
        subject = SyntheticSubject(spec, size, 30, num_frames)
        frames = (subject.render(t)[0] for t in range(num_frames))
        if stage == "render":
            for _ in frames:
                pass
        else:
            encode_video(work_dir / f"{spec.subject_id}.mp4", frames, 30)
    return subjects * num_frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=300, help="frames per subject")
    parser.add_argument(
        "--subjects", type=int, default=6, help="subjects per measurement (classes and scenes vary)"
    )
    args = parser.parse_args()
    cv2.setNumThreads(
        1
    )  # per-core numbers: the dataset tool runs one single-threaded process per core
    print(f"{'size':>9} {'render':>10} {'+encode':>10} {'subject':>10}   (frames/s on one core)")
    with tempfile.TemporaryDirectory() as work_dir:
        for size in ((160, 120), (320, 240)):
            rates = [
                frames_per_second(size, args.frames, args.subjects, stage, Path(work_dir))
                for stage in ("render", "encode", "subject")
            ]
            print(f"{size[0]:>4}x{size[1]:<4} " + " ".join(f"{rate:>10.0f}" for rate in rates))


if __name__ == "__main__":
    main()
