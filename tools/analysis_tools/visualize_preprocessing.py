"""Contact sheet of the preprocessing chain on one video.

Rows are pose keyframes; columns: original frame (with the estimated shoulders and hips), body
mask, background removed, aligned, and the optical flow to the next kept frame in HSV colour
(hue = direction, brightness = speed, full brightness at the clipping bound).

Example::

    python tools/analysis_tools/visualize_preprocessing.py data/gm_synthetic/videos/s0000.mp4 \
        --config configs/preprocess/<pipeline>.py --out docs/preprocessing_contact_sheet.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from gm_plugins.preprocess.chain import load_preprocess_pipeline
from gm_plugins.preprocess.geometry import TRUNK_KEYPOINTS
from gm_plugins.preprocess.streaming import build_preprocess_pipeline
from gm_plugins.utils.visualization import flow_to_colour

COLUMNS = ("original", "mask", "no background", "aligned", "flow")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--config", required=True, help="config file holding preprocess_pipeline")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument("--rows", type=int, default=4, help="number of keyframes shown")
    parser.add_argument("--cell-height", type=int, default=120, help="pixels per row")
    return parser.parse_args(argv)


def run_with_snapshots(pipeline, video: Path) -> tuple[dict, dict[str, list[np.ndarray]]]:
    """Run the chain step by step, keeping a copy of the frames after each step type."""
    results = dict(filename=str(video), start_index=0, modality="RGB")
    snapshots = {}
    for transform in pipeline.transforms:
        results = transform(results)
        snapshots[type(transform).__name__] = [frame.copy() for frame in results["imgs"]]
    return results, snapshots


def fit(image: np.ndarray, height: int) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, -1)
    width = round(image.shape[1] * height / image.shape[0])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def row_cells(results: dict, snapshots: dict, position: int, estimate: int) -> list[np.ndarray]:
    original = snapshots["DecodeFrames"][position].copy()
    for x, y in results["pose_keypoints"][estimate][list(TRUNK_KEYPOINTS)]:
        cv2.circle(original, (round(float(x)), round(float(y))), 3, (255, 255, 0), -1)
    mask = (results["body_masks"][position] * 255).astype(np.uint8)
    flows = results["flows"] / results["flow_bound"]  # pixels -> [-1, 1]
    flow = flow_to_colour(flows[min(position, len(flows) - 1)])
    return [
        original,
        mask,
        snapshots["BackgroundRemoval"][position],
        snapshots["PoseAlignment"][position],
        flow,
    ]


def contact_sheet(results: dict, snapshots: dict, rows: int, height: int) -> np.ndarray:
    positions = results["pose_frame_positions"][:rows]
    lines = []
    for estimate, position in enumerate(positions):
        cells = [fit(cell, height) for cell in row_cells(results, snapshots, position, estimate)]
        line = np.concatenate(
            [np.pad(c, ((0, 0), (0, 4), (0, 0)), constant_values=255) for c in cells], 1
        )
        label = f"frame {int(results['frame_inds'][position])}"
        for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):  # readable on any frame
            cv2.putText(line, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, thickness)
        lines.append(line)
    header = np.full((18, lines[0].shape[1], 3), 255, np.uint8)
    x = 0
    for name, cell in zip(COLUMNS, row_cells(results, snapshots, positions[0], 0), strict=True):
        cv2.putText(header, name, (x + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        x += fit(cell, height).shape[1] + 4
    return np.concatenate([header, *lines], 0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pipeline = build_preprocess_pipeline(load_preprocess_pipeline(args.config).steps)
    results, snapshots = run_with_snapshots(pipeline, args.video)
    sheet = contact_sheet(results, snapshots, args.rows, args.cell_height)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(
        f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]}); alignment fallback: "
        f"{results.get('alignment_fallback')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
