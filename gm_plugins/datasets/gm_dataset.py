"""GMDataset: infants from ``subjects.csv`` -> windows of their preprocessed videos."""

from __future__ import annotations

import csv
import json
import os.path as osp
from collections.abc import Sequence

import numpy as np
from mmaction.registry import DATASETS
from mmengine.dataset import BaseDataset

from ..compat import library_scope
from .cache import META_FILE, is_cached, write_cached_video
from .folds import load_folds, split_subjects, stratified_subject_folds
from .windows import WindowSpec, window_positions, window_starts

GM_CLASSES = ("WMs", "FMs", "PR")
REQUIRED_COLUMNS = ("subject_id", "label", "video")


def read_subjects(ann_file: str) -> list[dict]:
    """Rows of a ``subjects.csv`` (columns ``subject_id,label,video`` and optional others)."""
    if not osp.isfile(ann_file):
        raise FileNotFoundError(
            f"{ann_file} not found. Point ann_file (relative to data_root) at a subjects.csv, "
            "e.g. one written by tools/make_synthetic_dataset.py."
        )
    with open(ann_file, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{ann_file}: missing column(s) {missing}; needs {REQUIRED_COLUMNS}")
        rows = list(reader)
    if not rows:
        raise ValueError(f"{ann_file} lists no subjects")
    return rows


@DATASETS.register_module()
class GMDataset(BaseDataset):
    """Infants of a GM dataset, cut into windows of their preprocessed videos.

    Each item is one window of one infant: ``subject_id``, ``label``, ``window_index`` and
    the positions of its frames in the preprocessing cache (see
    :mod:`gm_plugins.datasets.cache`), which ``LoadCachedWindow`` reads.

    Args:
        ann_file: ``subjects.csv`` (relative to ``data_root``).
        cache_root: folder written by ``tools/preprocess_videos.py``.
        window: :class:`~gm_plugins.datasets.windows.WindowSpec` arguments (paper:
            ``start_stride=150, span=30, num_windows=12, frame_step=5`` in frames).
        split: ``'train'``, ``'val'``, ``'test'`` or ``'all'`` infants.
        num_folds, fold_seed: stratified subject folds (made from the csv, or read from
            ``folds_file`` so that every method of a comparison uses the same ones).
        test_fold, val_fold: the folds held out for testing and validation.
        subjects: explicit subject ids; overrides the fold selection.
        preprocess_pipeline: optional preprocessing chain (``DecodeFrames``,
            ``BackgroundRemoval``, ``PoseAlignment``, ``OpticalFlow`` configs). Given, the
            dataset runs it online on every video that is not cached yet and writes the result
            to ``cache_root`` (the slow path, for inference and small data); without it, a
            missing cache is an error that says how to make it.
    """

    METAINFO = dict(classes=GM_CLASSES)

    def __init__(
        self,
        ann_file: str,
        cache_root: str,
        pipeline: Sequence = (),
        window: dict | None = None,
        split: str = "all",
        num_folds: int = 5,
        fold_seed: int = 2021,
        test_fold: int = 0,
        val_fold: int | None = None,
        folds_file: str | None = None,
        subjects: Sequence[str] | None = None,
        preprocess_pipeline: Sequence | None = None,
        **kwargs,
    ) -> None:
        self.cache_root = cache_root
        self.window = WindowSpec(**(window or {}))
        self.split = split
        self.num_folds, self.fold_seed = num_folds, fold_seed
        self.test_fold, self.val_fold = test_fold, val_fold
        self.folds_file = folds_file
        self.subjects = list(subjects) if subjects is not None else None
        self.preprocess_pipeline = list(preprocess_pipeline) if preprocess_pipeline else None
        self._preprocess_chain = None
        # The pipeline names mmaction transforms; build it in that scope even when the dataset
        # is built outside a runner (notebooks, tools).
        with library_scope("mmaction"):
            super().__init__(ann_file=ann_file, pipeline=list(pipeline), **kwargs)

    def load_data_list(self) -> list[dict]:
        rows = read_subjects(self.ann_file)
        classes = list(self.metainfo["classes"])
        for row in rows:
            if row["label"] not in classes:
                raise ValueError(
                    f"{self.ann_file}: subject {row['subject_id']} has label {row['label']!r}; "
                    f"labels must be one of {classes}"
                )
        chosen = set(self._select_subjects(rows))
        data_list: list[dict] = []
        for row in rows:
            if row["subject_id"] in chosen:
                data_list.extend(self._windows_of(row, classes.index(row["label"])))
        if not data_list:
            raise ValueError(
                f"{type(self).__name__}: no windows for split={self.split!r} of {self.ann_file}"
            )
        return data_list

    def _select_subjects(self, rows: list[dict]) -> list[str]:
        if self.subjects is not None:
            known = {row["subject_id"] for row in rows}
            unknown = sorted(set(self.subjects) - known)
            if unknown:
                raise ValueError(f"subjects {unknown[:5]} are not in {self.ann_file}")
            return self.subjects
        if self.split == "all":
            return [row["subject_id"] for row in rows]
        if self.folds_file is not None:
            folds = load_folds(self.folds_file)
        else:
            ids = [row["subject_id"] for row in rows]
            folds = stratified_subject_folds(
                ids, [row["label"] for row in rows], self.num_folds, self.fold_seed
            )
        return split_subjects(folds, self.split, self.test_fold, self.val_fold)

    def _windows_of(self, row: dict, label: int) -> list[dict]:
        subject_id = row["subject_id"]
        if not is_cached(self.cache_root, subject_id) and self.preprocess_pipeline:
            self._preprocess_online(row)
        if not is_cached(self.cache_root, subject_id):
            raise FileNotFoundError(
                f"No preprocessed cache for {subject_id} in {self.cache_root}. Run "
                f"tools/preprocess_videos.py PREPROCESS_CONFIG --data-root {self.data_root} "
                f"--out {self.cache_root} (or fix cache_root in the dataset config)."
            )
        with open(osp.join(self.cache_root, subject_id, META_FILE)) as handle:
            meta = json.load(handle)
        fps = float(meta["fps"])
        cached_step = int(meta.get("frame_step", self.window.frame_step))
        if cached_step != self.window.frame_step:
            raise ValueError(
                f"{subject_id}: the cache holds every {cached_step}th frame but the window "
                f"asks for frame_step={self.window.frame_step}; set window.frame_step="
                f"{cached_step} or preprocess again with that step."
            )
        frame_indices = np.asarray(meta["frame_indices"], dtype=np.int64)
        num_frames = int(meta.get("total_frames", frame_indices[-1] + 1))
        num_flows = self.window.num_flows(fps)
        starts = window_starts(num_frames, fps, self.window)
        if not starts:
            raise ValueError(
                f"{subject_id}: its video ({num_frames} frames at {fps:g} fps) is shorter than "
                f"one window ({self.window.span} {self.window.unit}); shorten window.span"
            )
        return [
            dict(
                subject_id=subject_id,
                label=label,
                environment=row.get("environment", ""),
                cache_root=self.cache_root,
                window_index=index,
                window_start=start,
                frame_positions=window_positions(
                    frame_indices, start, num_flows, self.window.frame_step
                ),
                test_mode=self.test_mode,
            )
            for index, start in enumerate(starts)
        ]

    def _preprocess_online(self, row: dict) -> None:
        """Run the preprocessing chain on one video and cache it (models load once)."""
        from mmengine.logging import print_log

        from .transforms.preprocess import (
            build_preprocess_pipeline,
            cache_record,
            preprocess_video,
        )

        if self._preprocess_chain is None:
            self._preprocess_chain = build_preprocess_pipeline(self.preprocess_pipeline)
        video = osp.join(self.data_root, row["video"])
        print_log(f"preprocessing {video} online into {self.cache_root}", logger="current")
        record = cache_record(preprocess_video(self._preprocess_chain, video), row["video"])
        record["meta"].update(label=row["label"], environment=row.get("environment", ""))
        write_cached_video(self.cache_root, row["subject_id"], **record)

    @property
    def subject_ids(self) -> list[str]:
        """The infants of this split, in order of first appearance."""
        return list(dict.fromkeys(self.get_data_info(i)["subject_id"] for i in range(len(self))))
