"""Background removal: a segmentation model predicts the infant's body map on every frame.

The model is an mmseg model (``config`` + ``checkpoint``) or a registered packaged model
(``model=dict(type=...)``, :mod:`gm_plugins.preprocess.litert_models`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from gm_plugins.preprocess.geometry import shrunk_size
from gm_plugins.preprocess.litert_models import build_packaged_model
from gm_plugins.preprocess.model_runners import (
    SEGMENTATION_BACKENDS,
    BatchRunner,
    SegmentationRunner,
    check_model_files,
    load_model,
    rgb_to_model_input,
    segmentation_fast_path_problem,
)

MASK_MODES = ("soft", "hard", "none")


def infant_probability(seg_logits: torch.Tensor, infant_class: int) -> np.ndarray:
    """(C, H, W) logits -> (H, W) float32 probability of the infant class.

    One output channel means a sigmoid head (``use_sigmoid=True``); otherwise softmax.
    """
    if seg_logits.shape[0] == 1:
        probability = seg_logits[0].sigmoid()
    else:
        probability = seg_logits.softmax(0)[infant_class]
    return probability.float().cpu().numpy()


def infant_probabilities(seg_logits: torch.Tensor, infant_class: int) -> np.ndarray:
    """(N, C, H, W) logits -> (N, H, W) float32 probabilities, as :func:`infant_probability`."""
    if seg_logits.shape[1] == 1:
        probability = seg_logits[:, 0].sigmoid()
    else:
        probability = seg_logits.softmax(1)[:, infant_class]
    return probability.float().cpu().numpy()


def smooth_in_time(masks: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of (N, H, W) masks over ``window`` frames (edges use fewer)."""
    if window <= 1 or len(masks) < 2:
        return masks
    half = window // 2
    cumulative = np.concatenate([np.zeros_like(masks[:1]), np.cumsum(masks, 0, dtype=np.float64)])
    starts = np.clip(np.arange(len(masks)) - half, 0, len(masks))
    stops = np.clip(np.arange(len(masks)) + half + 1, 0, len(masks))
    sums = cumulative[stops] - cumulative[starts]
    return (sums / (stops - starts)[:, None, None]).astype(np.float32)


def mask_box(mask: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(x1, y1, x2, y2) float32 around pixels of ``mask`` above ``threshold``; NaNs if none."""
    return body_box_of(mask > threshold)


def body_box_of(body: np.ndarray) -> np.ndarray:
    """(x1, y1, x2, y2) float32 around the True pixels of a boolean (H, W) map; NaNs if none.

    Reduces rows and columns instead of listing every pixel (a 1080p mask holds millions).
    """
    rows = np.flatnonzero(body.any(axis=1))
    if not len(rows):
        return np.full(4, np.nan, np.float32)
    cols = np.flatnonzero(body.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.float32)


def multiply_by_mask(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) frame times float32 (H, W) mask in [0, 1], rounded half to even.

    The same values as ``(frame * mask[..., None]).round().astype(np.uint8)``, in one OpenCV
    pass without float copies of the frame (about 4x faster on 1080p frames).
    """
    return cv2.multiply(frame, cv2.merge([mask, mask, mask]), dtype=cv2.CV_8U)


def mask_compactness(mask: np.ndarray, threshold: float = 0.5) -> float:
    """Share of the above-``threshold`` pixels in the largest 8-connected blob; NaN if none.

    A lying infant is one blob (near 1); noise the model finds in moving texture is scattered.
    """
    body = (mask > threshold).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(body, connectivity=8)
    if count <= 1:
        return float("nan")
    areas = stats[1:, cv2.CC_STAT_AREA]
    return float(areas.max() / areas.sum())


def mask_confidence(mask: np.ndarray, threshold: float = 0.5) -> float:
    """Mean body probability of the above-``threshold`` pixels; NaN if there are none.

    Higher on an infant than on what the model finds in an empty cot or moving texture
    (demo models, synthetic gate set: median 0.81 on infants, 0.62 on empty cots, 0.67 on
    moving texture).
    """
    body = mask > threshold
    return float(mask[body].mean()) if body.any() else float("nan")


def frame_brightness(frames: list[np.ndarray]) -> np.ndarray:
    """Mean grey level (0-255) of each (H, W, 3) frame -> float32 (N,)."""
    return np.array([float(frame.mean()) for frame in frames], np.float32)


def union_box(boxes: np.ndarray) -> np.ndarray:
    """(x1, y1, x2, y2) float32 around all finite (N, 4) boxes; NaNs if there are none.

    Equals :func:`mask_box` of the frames' maximum mask, without keeping the masks.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    finite = boxes[np.isfinite(boxes).all(1)]
    if not len(finite):
        return np.full(4, np.nan, np.float32)
    return np.concatenate([finite[:, :2].min(0), finite[:, 2:].max(0)]).astype(np.float32)


MOTION_SIDE = 80  # long side of the thumbnails scene changes are measured on
CHANGE_LEVEL = 12.0  # grey levels a thumbnail pixel must change by to count as changed


def motion_thumbnail(
    frame: np.ndarray, mask: np.ndarray, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Grey thumbnail of a frame and where its body is, for :class:`SceneChanges`.

    Args:
        frame: (H, W, 3) uint8 RGB.
        mask: (h, w) body probability, any size.
        threshold: probability that counts as body.

    Returns:
        float32 (h', w') grey levels (long side at most :data:`MOTION_SIDE`, area average, so
        sensor noise mostly cancels) and bool (h', w') body, grown by one thumbnail pixel so
        that the edge of a moving body does not count as background.
    """
    height, width = frame.shape[:2]
    size = shrunk_size(width, height, MOTION_SIDE)
    grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    thumb = cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    body_map = cv2.resize(np.asarray(mask, np.float32), size, interpolation=cv2.INTER_AREA)
    body = cv2.dilate((body_map > threshold).astype(np.uint8), np.ones((3, 3), np.uint8))
    return thumb, body.astype(bool)


class SceneChanges:
    """How much of the scene changes between sampled frames, outside and inside the body.

    A fixed camera over a lying infant sees still bedding: only the body changes. A sliding
    cloth, a caregiver's hand or a swinging toy change the pixels around whatever the
    segmentation calls body. Keeps the last thumbnail, so chunks of one video follow on.
    """

    def __init__(self) -> None:
        self.previous: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, thumb: np.ndarray, body: np.ndarray) -> tuple[float, float]:
        """The next frame's :func:`motion_thumbnail` -> changed fractions (background, body).

        Each is the share of the pixels (outside, inside the body of either frame) whose grey
        level moved by more than :data:`CHANGE_LEVEL` once the median change (a global
        lighting change) is taken off; NaN for the first frame or where there are no such
        pixels.
        """
        previous, self.previous = self.previous, (thumb, body)
        if previous is None or previous[0].shape != thumb.shape:
            return float("nan"), float("nan")
        difference = thumb - previous[0]
        changed = np.abs(difference - np.median(difference)) > CHANGE_LEVEL
        either_body = body | previous[1]
        outside, inside = changed[~either_body], changed[either_body]
        return (
            float(outside.mean()) if outside.size else float("nan"),
            float(inside.mean()) if inside.size else float("nan"),
        )


@dataclass
class MaskedFrames:
    """What :meth:`BackgroundRemoval.mask_frames` gives for N frames of size (H, W).

    Attributes:
        frames: list of N (H, W, 3) uint8 RGB frames with the mask mode applied.
        boxes: float32 (N, 4) x1, y1, x2, y2 around the body in frame pixels (NaN where none).
        areas: float32 (N,) fraction of each frame above the threshold.
        compactness: float32 (N,) :func:`mask_compactness` of each mask (NaN where empty).
        confidence: float32 (N,) :func:`mask_confidence` of each mask (NaN where empty).
        masks: float32 (N, H, W) masks in [0, 1], or None unless ``keep_masks``.
        background_changes: float32 (N,) share of the background that changed since the
            previous frame (see :class:`SceneChanges`; NaN for a video's first frame and
            where no tracker was given).
        body_changes: float32 (N,) the same inside the body.
    """

    frames: list[np.ndarray]
    boxes: np.ndarray
    areas: np.ndarray
    compactness: np.ndarray
    confidence: np.ndarray
    masks: np.ndarray | None
    background_changes: np.ndarray
    body_changes: np.ndarray

    def measurements(self) -> dict[str, np.ndarray]:
        """The per-frame measurements under their results keys (each (N,) or (N, 4))."""
        return dict(
            body_boxes=self.boxes,
            body_areas=self.areas,
            body_compactness=self.compactness,
            body_confidence=self.confidence,
            background_changes=self.background_changes,
            body_changes=self.body_changes,
        )


@TRANSFORMS.register_module()
class BackgroundRemoval(BaseTransform):
    """Black out everything but the infant using any mmseg (or packaged) segmentation model.

    The frames of a clip go through the model's own test pipeline and ``test_step`` in batches.
    The soft mask (the paper's choice) multiplies each RGB frame by the probability of the
    infant class; the hard mask keeps pixels whose probability exceeds ``threshold``.

    Frames whose long side exceeds ``max_side`` are shrunk (area interpolation) before they meet
    the model and the probability map is enlarged back (bilinear) one frame at a time, so
    memory does not grow with the resolution of the recording (a 1080p frame costs the model
    what a 640x360 one does).

    Required keys:
        - imgs (list of (H, W, 3) uint8 RGB)

    Modified keys:
        - imgs (background removed)

    Added keys:
        - body_masks (float32 (N, H, W) in [0, 1])
        - body_boxes (float32 (N, 4) x1, y1, x2, y2 per frame; NaN where no infant is found)
        - body_box (float32 (4,) around the infant in all frames; NaN if never found)
        - body_areas (float32 (N,) fraction of each frame above ``threshold``)
        - body_compactness (float32 (N,) share of the body in its largest blob; NaN if none)
        - body_confidence (float32 (N,) mean probability of the body pixels; NaN if none)
        - frame_brightness (float32 (N,) mean grey level of each frame before masking)
        - background_changes, body_changes (float32 (N,) share of the pixels outside and
          inside the body that changed since the previous frame; NaN for the first)
        - original_imgs (the frames before masking; only with ``keep_original=True``)

    Args:
        config (str, optional): mmseg config file of the segmentation model (None with
            ``model``).
        checkpoint (str, optional): its weights (a local path). None builds the model with
            random weights, which only shows that a config runs. Defaults to None.
        device (str): where the model runs. Defaults to 'cpu'.
        infant_class (int): index of the infant class in the model's output. Defaults to 1.
        mask_mode (str): 'soft' (multiply by the probability), 'hard' (threshold) or 'none'
            (keep the frames as they are but still add the masks and boxes: the "without
            background removal" ablation, whose alignment still finds the infant's box).
            Defaults to 'soft'.
        threshold (float): infant probability that counts as body, for the hard mask and boxes.
            Defaults to 0.5.
        temporal_smoothing (int): moving-average window over frames; 1 disables it.
            Defaults to 1.
        batch_size (int): frames per model call. Defaults to 16.
        max_side (int, optional): long side, in pixels, frames are shrunk to before the model
            (None: never shrink). Defaults to 640, above the input size of the shipped models.
        keep_original (bool): also keep the unmasked frames (for ``PoseAlignment`` with
            ``pose_input='original'``). Defaults to False.
        fast (bool): run whole-image ``EncoderDecoder`` models through
            :class:`SegmentationRunner` (batched preprocessing and resizing of the logits, no
            per-frame data samples; the same masks). Other models, or False, use the model's
            ``test_step`` per batch. Defaults to True.
        backend (str): 'pytorch' or 'onnxruntime': where the fast path runs the network. ONNX
            Runtime is about 2x faster on CPUs; the model is exported on first use, checked
            against PyTorch (logits within 1e-4) and kept in ``$GM_PLUGINS_ONNX_CACHE`` (default
            ``~/.cache/gm_plugins/onnx``) under the sha256 of the config and checkpoint. Needs
            a model the fast path runs. Defaults to 'pytorch'. Unused with ``model``.
        model (dict, optional): instead of ``config``, a registered packaged model whose
            weights come inside an installed package, e.g.
            ``dict(type='MediaPipeSelfieSegmentation')`` (run with LiteRT; see
            :mod:`gm_plugins.preprocess.litert_models`). Its person probability is the mask.
            Defaults to None.
    """

    def __init__(
        self,
        config: str | None = None,
        checkpoint: str | None = None,
        device: str = "cpu",
        infant_class: int = 1,
        mask_mode: str = "soft",
        threshold: float = 0.5,
        temporal_smoothing: int = 1,
        batch_size: int = 16,
        max_side: int | None = 640,
        keep_original: bool = False,
        fast: bool = True,
        backend: str = "pytorch",
        model: dict | None = None,
    ) -> None:
        if mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode={mask_mode!r}: choose one of {MASK_MODES}")
        if temporal_smoothing < 1:
            raise ValueError(f"temporal_smoothing must be >= 1, got {temporal_smoothing}")
        if max_side is not None and max_side < 8:
            raise ValueError(f"max_side must be None or >= 8, got {max_side}")
        if backend not in SEGMENTATION_BACKENDS:
            raise ValueError(f"backend={backend!r}: choose one of {SEGMENTATION_BACKENDS}")
        if backend != "pytorch" and not fast and model is None:
            raise ValueError(f"backend={backend!r} runs in the fast path: set fast=True")
        self.model = model
        self._packaged = None
        if model is not None:
            if config is not None or checkpoint is not None:
                raise ValueError(
                    "BackgroundRemoval: give either config (+ checkpoint) or model, not both"
                )
            self._packaged = build_packaged_model(model, "segmentation")
        elif config is None:
            raise ValueError(
                "BackgroundRemoval needs config= (an mmseg config file, with checkpoint=) or "
                "model=dict(type=...) (a packaged model such as MediaPipeSelfieSegmentation)"
            )
        else:
            check_model_files("mmseg", config, checkpoint)
        self.config = config
        self.checkpoint = checkpoint
        self.device = device
        self.infant_class = infant_class
        self.mask_mode = mask_mode
        self.threshold = threshold
        self.temporal_smoothing = temporal_smoothing
        self.batch_size = batch_size
        self.max_side = max_side
        self.keep_original = keep_original
        self.fast = fast
        self.backend = backend
        self._runner: BatchRunner | None = None
        self._fast_runner: SegmentationRunner | None = None

    def __getstate__(self) -> dict:
        # workers reload from the process cache
        return dict(self.__dict__, _runner=None, _fast_runner=None)

    @property
    def runner(self) -> BatchRunner | object:
        """The model and its test pipeline, loaded on first use (once per process); the
        packaged model (its interpreter loaded) when the step has one."""
        if self._packaged is not None:
            self._packaged.interpreter  # noqa: B018  (loads on first access)
            return self._packaged
        if self._runner is None:
            model = load_model("mmseg", self.config, self.checkpoint, self.device)
            self._runner = BatchRunner(model, "mmseg", self.batch_size)
        return self._runner

    @property
    def fast_runner(self) -> SegmentationRunner | None:
        """The batched runner of the model, or None (``fast=False``, a model it cannot run or a
        packaged model)."""
        if self._packaged is not None:
            return None
        if self.fast and self._fast_runner is None:
            model = self.runner.model
            problem = segmentation_fast_path_problem(model)
            if problem is None:
                self._fast_runner = SegmentationRunner(
                    model, self.batch_size, backend=self.backend, onnx_key=self._onnx_key()
                )
            elif self.backend != "pytorch":
                raise ValueError(
                    f"BackgroundRemoval(backend={self.backend!r}) cannot run {self.config}: "
                    f"{problem}. Use backend='pytorch'."
                )
            else:
                self.fast = False
        return self._fast_runner

    def _onnx_key(self) -> str | None:
        """sha256 of the config and checkpoint files (None for random weights)."""
        if self.backend == "pytorch" or self.checkpoint is None:
            return None
        import hashlib
        import json

        from gm_plugins.datasets.cache import file_fingerprint

        files = [file_fingerprint(path) for path in (self.config, self.checkpoint)]
        return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()

    def predict_masks(self, frames: list[np.ndarray]) -> np.ndarray:
        """Infant probability of (H, W, 3) RGB frames -> float32 (N, h, w).

        (h, w) is the frame size shrunk to ``max_side`` (the frame size itself for smaller
        frames); :meth:`mask_frames` enlarges each map back to its frame.
        """
        if not frames:
            raise ValueError("predict_masks needs at least one frame")
        inputs = [self._shrunk(frame) for frame in frames]
        if self._packaged is not None:
            return self._packaged(inputs)
        runner = self.fast_runner
        probabilities = []
        for start in range(0, len(inputs), self.batch_size):
            batch = inputs[start : start + self.batch_size]
            if runner is not None and all(i.shape == batch[0].shape for i in batch):
                probabilities.extend(infant_probabilities(runner(batch), self.infant_class))
                continue
            predictions = self.runner([dict(img=rgb_to_model_input(image)) for image in batch])
            probabilities.extend(
                infant_probability(p.seg_logits.data, self.infant_class) for p in predictions
            )
        return np.stack(probabilities)

    def _shrunk(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        size = shrunk_size(width, height, self.max_side)
        if size != (width, height):
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        return frame

    def mask_frames(
        self,
        frames: list[np.ndarray],
        masks: np.ndarray | None = None,
        keep_masks: bool = False,
        changes: SceneChanges | None = None,
    ) -> MaskedFrames:
        """Apply the mask mode to RGB frames (H, W, 3) and measure the body on each.

        Args:
            frames: N (H, W, 3) uint8 RGB frames.
            masks: float32 (N, h, w) probabilities from :meth:`predict_masks` (already
                smoothed); predicted when not given.
            keep_masks: also return the (N, H, W) masks (memory proportional to N H W).
            changes: the video's scene-change tracker (one per video, so chunks follow on);
                None leaves the changes unmeasured (NaN).

        With ``mask_mode='none'`` the frames come back unchanged.
        """
        if masks is None:
            masks = self.predict_masks(frames)
        out_frames, boxes, areas, compactness, confidence, kept = [], [], [], [], [], []
        scene_changes = np.full((len(frames), 2), np.nan, np.float32)
        for index, (frame, mask) in enumerate(zip(frames, masks, strict=True)):
            compactness.append(mask_compactness(mask, self.threshold))
            confidence.append(mask_confidence(mask, self.threshold))
            if changes is not None:
                scene_changes[index] = changes.add(*motion_thumbnail(frame, mask, self.threshold))
            height, width = frame.shape[:2]
            if mask.shape != (height, width):
                mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
            mask = np.clip(mask, 0.0, 1.0, dtype=np.float32)
            if self.mask_mode == "hard":
                mask = (mask > self.threshold).astype(np.float32)
            if self.mask_mode != "none":
                frame = multiply_by_mask(frame, mask)
            out_frames.append(frame)
            body = mask > self.threshold
            boxes.append(body_box_of(body))
            areas.append(np.count_nonzero(body) / body.size)
            if keep_masks:
                kept.append(mask)
        return MaskedFrames(
            frames=out_frames,
            boxes=np.stack(boxes) if boxes else np.zeros((0, 4), np.float32),
            areas=np.asarray(areas, np.float32),
            compactness=np.asarray(compactness, np.float32),
            confidence=np.asarray(confidence, np.float32),
            masks=np.stack(kept) if keep_masks and kept else None,
            background_changes=scene_changes[:, 0],
            body_changes=scene_changes[:, 1],
        )

    def transform(self, results: dict) -> dict:
        frames = results["imgs"]
        results["frame_brightness"] = frame_brightness(frames)
        masks = smooth_in_time(self.predict_masks(frames), self.temporal_smoothing)
        if self.keep_original:
            results["original_imgs"] = frames
        masked = self.mask_frames(frames, masks, keep_masks=True, changes=SceneChanges())
        results["imgs"] = masked.frames
        results["body_masks"] = masked.masks
        results.update(masked.measurements())
        results["body_box"] = union_box(masked.boxes)
        return results

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(config='{self.config}', checkpoint='{self.checkpoint}', "
            f"device='{self.device}', infant_class={self.infant_class}, "
            f"mask_mode='{self.mask_mode}', threshold={self.threshold}, "
            f"temporal_smoothing={self.temporal_smoothing}, batch_size={self.batch_size}, "
            f"max_side={self.max_side}, "
            f"keep_original={self.keep_original}, fast={self.fast}, backend={self.backend!r}, "
            f"model={self.model!r})"
        )
