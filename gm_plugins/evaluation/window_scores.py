"""Class probabilities of every test window of a preprocessed video, from a trained classifier.

The one place windows are cut and scored outside a training loop: inference on new videos
(:mod:`gm_plugins.apis.inference`) and the validation checks a bundle is fitted with
(:mod:`gm_plugins.deploy.validation`) both score through :class:`WindowScorer`, so what a
bundle was validated on is exactly what it does on a new video. Each window goes through the
classifier config's own test pipeline (``LoadCachedWindow`` + ``PackStreamInputs``) and
``model.test_step``.
"""

from __future__ import annotations

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from gm_plugins.preprocess.streaming import build_preprocess_pipeline

from ..datasets.cache import CachedVideo
from ..datasets.gm_dataset import sampled_timeline
from ..datasets.windows import WindowSpec, window_positions, window_starts


def probabilities_of(scores: torch.Tensor, head_cfg: dict | None) -> np.ndarray:
    """(W, K) class probabilities from the heads' ``pred_score`` (softmax unless 'prob')."""
    scores = scores.float()
    if not head_cfg or head_cfg.get("average_clips") != "prob":
        scores = scores.softmax(-1)
    return scores.numpy().astype(np.float64)


class WindowScorer:
    """Cut a cached (or in-memory) video into the classifier's test windows and score them.

    Args:
        recognizer: the mmaction recognizer, in eval mode.
        cfg: its config (test pipeline, batch size, head).
        window: the test windows.
        num_classes: classes of the head.
    """

    def __init__(
        self, recognizer: torch.nn.Module, cfg: Config, window: WindowSpec, num_classes: int
    ) -> None:
        self.recognizer = recognizer
        self.cfg = cfg
        self.window = window
        self.num_classes = num_classes
        self.pipeline = build_preprocess_pipeline(cfg.test_dataloader.dataset.pipeline)
        self.batch_size = int(cfg.test_dataloader.get("batch_size", 16))

    def __call__(self, entry: CachedVideo) -> tuple[np.ndarray, list[dict]]:
        """(W, K) window probabilities of a preprocessed video and each window's times
        (``index``, ``start_s``, ``end_s``)."""
        meta = entry.meta
        sample_fps, timestamps = sampled_timeline(meta, str(entry.path))
        num_frames = len(entry.frames)
        starts = window_starts(num_frames, sample_fps, self.window, meta.get("fps"))
        flows = self.window.num_flows(sample_fps, meta.get("fps"))
        windows, samples = [], []
        for index, start in enumerate(starts):
            positions = window_positions(start, flows, num_frames)
            item = dict(
                cached_video=entry,
                subject_id=str(meta.get("subject_id", "video")),
                frame_positions=positions,
                window_index=index,
                window_start=int(entry.frame_indices[start]),
                label=None,
                test_mode=True,
            )
            samples.append(self.pipeline(item))
            windows.append(
                dict(
                    index=index,
                    start_s=round(float(timestamps[start]), 4),
                    end_s=round(float(timestamps[positions[-1]]), 4),
                )
            )
        scores = []
        with torch.no_grad():
            for first in range(0, len(samples), self.batch_size):
                batch = pseudo_collate(samples[first : first + self.batch_size])
                outputs = self.recognizer.test_step(batch)
                scores.extend(output.pred_score.detach().cpu() for output in outputs)
        if not scores:
            return np.zeros((0, self.num_classes)), windows
        head = self.cfg.model.get("cls_head", None)
        return probabilities_of(torch.stack(scores), head), windows
