"""GMDataset: infants from ``subjects.csv`` -> windows of their preprocessed videos."""

from __future__ import annotations

import logging
import os.path as osp
from collections import Counter
from collections.abc import Sequence

import numpy as np
from mmaction.registry import DATASETS
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ..compat import library_scope
from .cache import is_cached, read_meta
from .folds import load_folds, split_subjects, stratified_subject_folds
from .subjects import GM_CLASSES, read_subjects
from .windows import WindowSpec, window_positions, window_starts

_PREPROCESS_AGAIN = (
    "preprocess it again with tools/data/preprocess_videos.py (DecodeFrames(target_fps=...)) "
    "into a new cache_root"
)


def _preprocess_function(name: str):
    """A function of the preprocessing driver (:mod:`gm_plugins.preprocess.streaming`), found in
    MMEngine's FUNCTIONS registry: the dataset sits below the preprocessing package and does not
    import it."""
    from mmengine.registry import FUNCTIONS

    function = FUNCTIONS.get(name)
    if function is None:
        raise RuntimeError(
            f"{name} is not registered: import gm_plugins (custom_imports in the config) before "
            "building a GMDataset with a preprocess_pipeline"
        )
    return function


def sampled_timeline(meta: dict, where: str) -> tuple[float, np.ndarray]:
    """The sample rate and the (N,) float64 timestamps (seconds) of a cached video's frames.

    Reads ``meta['sample_fps']`` and ``meta['timestamps']``; caches written before they existed
    (every ``frame_step``-th frame) give ``fps / frame_step`` and ``frame_indices / fps``.

    Raises:
        ValueError: naming ``where`` when meta cannot tell the time base.
    """
    indices = np.asarray(meta.get("frame_indices", ()), np.int64)
    fps = float(meta.get("fps") or 0.0)
    if meta.get("sample_fps"):
        sample_fps = float(meta["sample_fps"])
    else:
        step = int(meta.get("frame_step") or 0)
        regular = step > 0 and np.array_equal(indices, indices[0] + step * np.arange(len(indices)))
        if fps <= 0 or not regular:
            raise ValueError(
                f"{where}: meta.json has no sample_fps and no fps with a frame_step that matches "
                f"its frame_indices, so its time base is unknown; {_PREPROCESS_AGAIN}"
            )
        sample_fps = fps / step
    if meta.get("timestamps") is not None:
        timestamps = np.asarray(meta["timestamps"], np.float64)
    elif fps > 0:
        timestamps = indices / fps
    else:
        timestamps = np.arange(len(indices)) / sample_fps
    return sample_fps, timestamps


def fallback_reason(meta: dict) -> str | None:
    """Why the preprocessing of a cached video fell back (a reason code), or None."""
    quality = meta.get("quality") or {}
    reason = quality.get("fallback") if isinstance(quality, dict) else None
    if not reason:
        alignment = meta.get("alignment") or {}
        reason = alignment.get("fallback") if isinstance(alignment, dict) else None
    return str(reason) if reason else None


@DATASETS.register_module()
class GMDataset(BaseDataset):
    """Infants of a GM dataset, cut into windows of their preprocessed videos.

    Each item is one window of one infant: ``subject_id``, ``label``, ``window_index``,
    ``window_start`` (source frame of its first frame), ``window_time`` (its start in seconds)
    and ``frame_positions`` ((L + 1,) positions of its frames in the preprocessing cache, see
    :mod:`gm_plugins.datasets.cache`), which ``LoadCachedWindow`` reads.

    Windows are cut on the cache's sampled timeline (``meta['sample_fps']``), so a window of
    ``span`` seconds holds the same number of flow fields for every camera frame rate.

    Args:
        ann_file: ``subjects.csv`` (relative to ``data_root``), read with
            :func:`gm_plugins.datasets.subjects.read_subjects`.
        cache_root: folder written by ``tools/data/preprocess_videos.py``.
        window: :class:`~gm_plugins.datasets.windows.WindowSpec` arguments (paper:
            ``start_stride=5, span=1, num_windows=12`` seconds: 6 flow fields at 6 fps).
        split: ``'train'``, ``'val'``, ``'test'`` or ``'all'`` infants.
        num_folds, fold_seed: stratified subject folds (made from the csv, or read from
            ``folds_file`` so that every method of a comparison uses the same ones).
        test_fold, val_fold: the folds held out for testing and validation.
        subjects: explicit subject ids; overrides the fold selection.
        exclude_fallbacks: leave out videos whose preprocessing fell back (``meta['quality']
            ['fallback']`` or, in older caches, ``meta['alignment']['fallback']`` set, e.g. no
            infant found); they are logged once with counts per reason. False keeps them.
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
        exclude_fallbacks: bool = True,
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
        self.exclude_fallbacks = exclude_fallbacks
        self.preprocess_pipeline = list(preprocess_pipeline) if preprocess_pipeline else None
        self._preprocess_chain = None
        # The pipeline names mmaction transforms; build it in that scope even when the dataset
        # is built outside a runner (notebooks, tools).
        with library_scope("mmaction"):
            super().__init__(ann_file=ann_file, pipeline=list(pipeline), **kwargs)

    def load_data_list(self) -> list[dict]:
        classes = list(self.metainfo["classes"])
        rows = read_subjects(
            self.ann_file,
            self.data_root or None,
            classes=classes,
            require_label=True,
            check_videos=False,
        )
        chosen = set(self._select_subjects(rows))
        videos, excluded = [], Counter()
        for row in rows:
            if row["subject_id"] not in chosen:
                continue
            meta = self._meta_of(row)
            reason = fallback_reason(meta)
            if reason and self.exclude_fallbacks:
                excluded[reason] += 1
            else:
                videos.append((row, meta))
        self._report_excluded(excluded, len(chosen))
        data_list: list[dict] = []
        for row, meta in videos:
            data_list.extend(self._windows_of(row, classes.index(row["label"]), meta))
        if not data_list:
            raise ValueError(
                f"{type(self).__name__}: no windows for split={self.split!r} of {self.ann_file}"
            )
        self._check_equal_lengths(data_list)
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

    def _meta_of(self, row: dict) -> dict:
        subject_id = row["subject_id"]
        if not is_cached(self.cache_root, subject_id) and self.preprocess_pipeline:
            self._preprocess_online(row)
        if not is_cached(self.cache_root, subject_id):
            raise FileNotFoundError(
                f"No preprocessed cache for {subject_id} in {self.cache_root}. Run "
                f"tools/data/preprocess_videos.py PREPROCESS_CONFIG --data-root {self.data_root} "
                f"--out {self.cache_root} (or fix cache_root in the dataset config)."
            )
        return read_meta(self.cache_root, subject_id)

    def _report_excluded(self, excluded: Counter, num_chosen: int) -> None:
        if not excluded:
            return
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(excluded.items()))
        total = sum(excluded.values())
        if total == num_chosen:
            raise ValueError(
                f"{type(self).__name__}: all {total} videos of split={self.split!r} in "
                f"{self.cache_root} fell back in preprocessing ({reasons}), so none is left. Check "
                "the preprocessing models on these videos "
                "(tools/analysis_tools/visualize_preprocessing.py), or "
                "set exclude_fallbacks=False in the dataset config to use them anyway."
            )
        print_log(
            f"{type(self).__name__} (split={self.split!r}): left out {total} of {num_chosen} "
            f"videos whose preprocessing fell back ({reasons}); exclude_fallbacks=False keeps "
            "them",
            logger="current",
            level=logging.WARNING,
        )

    def _windows_of(self, row: dict, label: int, meta: dict) -> list[dict]:
        subject_id = row["subject_id"]
        where = osp.join(str(self.cache_root), subject_id)
        sample_fps, timestamps = sampled_timeline(meta, where)
        fps = float(meta.get("fps") or 0.0) or None
        frame_indices = np.asarray(meta["frame_indices"], dtype=np.int64)
        num_frames = int(meta.get("num_frames", len(frame_indices)))
        num_flows = self.window.num_flows(sample_fps, fps)
        starts = window_starts(num_frames, sample_fps, self.window, fps)
        if not starts:
            raise ValueError(
                f"{subject_id}: its cached video ({num_frames} frames at {sample_fps:g} fps, "
                f"{num_frames / sample_fps:.2f} s) is shorter than one window "
                f"({self.window.span} {self.window.unit}, {num_flows + 1} frames); shorten "
                "window.span or leave the infant out"
            )
        return [
            dict(
                subject_id=subject_id,
                label=label,
                environment=row.get("environment", ""),
                cache_root=self.cache_root,
                window_index=index,
                window_start=int(frame_indices[start]),
                window_time=float(timestamps[start]),
                sample_fps=sample_fps,
                frame_positions=window_positions(start, num_flows, num_frames),
                test_mode=self.test_mode,
            )
            for index, start in enumerate(starts)
        ]

    def _check_equal_lengths(self, data_list: list[dict]) -> None:
        """Windows of different lengths cannot share a batch: say which videos differ."""
        lengths: dict[int, dict[str, float]] = {}
        for item in data_list:
            flows = len(item["frame_positions"]) - 1
            lengths.setdefault(flows, {})[item["subject_id"]] = item["sample_fps"]
        if len(lengths) < 2:
            return
        groups = "; ".join(
            f"{flows} flow fields: "
            + ", ".join(f"{s} ({fps:g} fps)" for s, fps in list(subjects.items())[:4])
            + (" ..." if len(subjects) > 4 else "")
            for flows, subjects in sorted(lengths.items())
        )
        raise ValueError(
            f"{type(self).__name__}: the videos in {self.cache_root} were sampled at different "
            f"rates, so their windows differ in length and cannot be batched ({groups}). "
            "Caches sampled every frame_step-th frame depend on the camera: "
            f"{_PREPROCESS_AGAIN} so that every video is sampled at the same target_fps."
        )

    def _preprocess_online(self, row: dict) -> None:
        """Stream one video through the preprocessing chain into the cache (models load once).

        The cache's chain record is checked first, as offline, so a cache of another chain or
        of a retrained model is refused.
        """
        from .cache import claim_cache

        if self._preprocess_chain is None:
            claim_cache(self.cache_root, [dict(step) for step in self.preprocess_pipeline])
            build = _preprocess_function("gm_build_preprocess_pipeline")
            self._preprocess_chain = build(self.preprocess_pipeline)
        video = osp.join(self.data_root, row["video"])
        print_log(f"preprocessing {video} online into {self.cache_root}", logger="current")
        extra = dict(label=row["label"], environment=row.get("environment", ""))
        preprocess_to_cache = _preprocess_function("gm_preprocess_to_cache")
        preprocess_to_cache(
            self._preprocess_chain, video, self.cache_root, row["subject_id"], extra, row["video"]
        )

    @property
    def subject_ids(self) -> list[str]:
        """The infants of this split, in order of first appearance."""
        return list(dict.fromkeys(self.get_data_info(i)["subject_id"] for i in range(len(self))))
