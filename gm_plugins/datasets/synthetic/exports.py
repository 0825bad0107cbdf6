"""Frames for training and measuring the preprocessing models, in mmseg and mmpose layouts.

They come from extra subjects (``p0000``...) that are not in ``subjects.csv``, so segmentation and
pose quality can be measured on infants the preprocessing models never saw.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from gm_plugins.utils.io import write_json_atomic

from . import writer
from .body import COCO_KEYPOINTS, COCO_SKELETON, OUTSIDE
from .subject import SyntheticSubject

_COCO_NAMES = [name.replace("l_", "left_").replace("r_", "right_") for name in COCO_KEYPOINTS]


def prep_split(index: int, count: int, val_fraction: float = 0.25) -> str:
    """'train' or 'val' for preprocessing subject ``index`` of ``count`` (the last ones are val)."""
    num_val = min(max(1, round(count * val_fraction)), count - 1) if count > 1 else 0
    return "val" if index >= count - num_val else "train"


def parts_path(out_dir: Path, subject_id: str) -> Path:
    """Per-subject annotation records; written last, so their presence marks the subject done."""
    return out_dir / "mmpose" / "annotations" / "parts" / f"{subject_id}.json"


def export_subject(
    subject: SyntheticSubject, frame_indices: list[int], split: str, out_dir: Path
) -> None:
    """Write a few frames of one subject as mmseg and mmpose samples.

    Writes ``mmseg/img_dir/<split>/<name>.png`` (RGB), ``mmseg/ann_dir/<split>/<name>.png``
    (0 background, 1 infant), ``mmpose/images/<split>/<name>.png`` and the subject's annotation
    records.
    """
    records = []
    for t in frame_indices:
        image, mask = subject.render(t)
        name = f"{subject.spec.subject_id}_{t:05d}.png"
        writer.write_png(out_dir / "mmseg" / "img_dir" / split / name, image)
        writer.write_png(out_dir / "mmseg" / "ann_dir" / split / name, mask)
        writer.write_png(out_dir / "mmpose" / "images" / split / name, image)
        records.append(_record(name, mask, subject.keypoints[t]))
    write_json_atomic(
        parts_path(out_dir, subject.spec.subject_id), {"split": split, "records": records}
    )


def _record(file_name: str, mask: np.ndarray, keypoints: np.ndarray) -> dict:
    """One image with one COCO person annotation; keypoints (17, 3), mask (H, W) uint8."""
    keypoints = keypoints.astype(np.float64).copy()
    keypoints[keypoints[:, 2] == OUTSIDE] = 0  # COCO zeroes unlabelled points
    x, y, w, h = cv2.boundingRect(mask)
    return {
        "file_name": file_name,
        "height": int(mask.shape[0]),
        "width": int(mask.shape[1]),
        "keypoints": [round(float(v), 2) for v in keypoints.reshape(-1)],
        "num_keypoints": int((keypoints[:, 2] > 0).sum()),
        "bbox": [float(x), float(y), float(w), float(h)],
        "area": float(mask.sum()),
    }


def write_coco_annotations(out_dir: Path, subject_ids: list[str]) -> dict[str, int]:
    """Gather subject records into ``mmpose/annotations/{train,val}.json``; returns image counts."""
    splits: dict[str, dict] = {
        split: {"images": [], "annotations": []} for split in ("train", "val")
    }
    for subject_id in subject_ids:
        part = json.loads(parts_path(out_dir, subject_id).read_text())
        coco = splits[part["split"]]
        for record in part["records"]:
            image_id = len(coco["images"]) + 1
            coco["images"].append(
                {"id": image_id, **{k: record[k] for k in ("file_name", "height", "width")}}
            )
            annotation = {k: record[k] for k in ("keypoints", "num_keypoints", "bbox", "area")}
            coco["annotations"].append(
                {"id": image_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, **annotation}
            )
    category = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": _COCO_NAMES,
        "skeleton": [list(pair) for pair in COCO_SKELETON],
    }
    for split, coco in splits.items():
        coco["categories"] = [category]
        coco["info"] = {"description": "gm_plugins synthetic infants, preprocessing frames"}
        write_json_atomic(out_dir / "mmpose" / "annotations" / f"{split}.json", coco)
    return {split: len(coco["images"]) for split, coco in splits.items()}
