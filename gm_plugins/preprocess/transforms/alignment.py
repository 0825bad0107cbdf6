"""Body position adjustment: a top-down pose model finds the trunk; one similarity per video.

The model is an mmpose model (``config`` + ``checkpoint``) or a registered packaged model
(``model=dict(type=...)``, :mod:`gm_plugins.preprocess.litert_models`).
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from gm_plugins.preprocess import geometry
from gm_plugins.preprocess.litert_models import build_packaged_model
from gm_plugins.preprocess.model_runners import (
    BatchRunner,
    check_model_files,
    load_model,
    rgb_to_model_input,
)
from gm_plugins.preprocess.transforms.background import union_box

ALIGNMENT_MODES = ("video", "window")
POSE_INPUTS = ("masked", "original")


def keyframe_positions(frame_inds: np.ndarray, interval: int) -> np.ndarray:
    """Positions of the first kept frame in each block of ``interval`` source frames.

    With frames kept every 5 source frames and ``interval=30`` this is every 6th kept frame,
    i.e. source frames 0, 30, 60, ... as in the paper.
    """
    return np.unique(np.asarray(frame_inds) // interval, return_index=True)[1]


def segment_bounds(frame_inds: np.ndarray, mode: str, window_length: int) -> list[tuple[int, int]]:
    """[start, stop) positions of the frames sharing one transform (whole clip or per window)."""
    if mode == "video":
        return [(0, len(frame_inds))]
    blocks = np.asarray(frame_inds) // window_length
    starts = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]])
    return list(zip(starts.tolist(), np.r_[starts[1:], len(blocks)].tolist(), strict=True))


def warp_frames(frames: list[np.ndarray], matrices: np.ndarray, out_size: int) -> list[np.ndarray]:
    """Apply one (2, 3) matrix per frame; outside the source image is black."""
    return [
        cv2.warpAffine(frame, matrix, (out_size, out_size), flags=cv2.INTER_LINEAR, borderValue=0)
        for frame, matrix in zip(frames, matrices, strict=True)
    ]


def person_boxes(
    boxes: np.ndarray | None, count: int, frame_size: tuple[int, int]
) -> list[np.ndarray]:
    """Where the pose model looks on ``count`` frames: each body box, or the whole (W, H) frame
    where there is none (no background removal, or a NaN box)."""
    whole = np.array([0, 0, *frame_size], np.float32)
    if boxes is None:
        return [whole] * count
    return [box if np.all(np.isfinite(box)) else whole for box in boxes]


@TRANSFORMS.register_module()
class PoseAlignment(BaseTransform):
    """Put the infant's trunk upright, centred and at a fixed scale (any mmpose top-down model).

    Keypoints are estimated on one frame per ``keyframe_interval`` source frames, inside the
    box of the body mask (the whole frame when there is none). Estimates whose shoulders and
    hips all score above ``min_keypoint_score`` are aggregated as in the paper (middle 50 % by
    trunk length) into one similarity transform per video or per window, which maps the trunk
    centre to the image centre, turns the trunk vertical with the head up and scales a square
    of side ``scale`` * trunk length to ``out_size`` pixels. When no estimate is usable the
    frames are kept unrotated, centred on the mask (or frame), and ``alignment_fallback`` says
    why.

    Required keys:
        - imgs (list of (H, W, 3) uint8 RGB, background removed)
        - frame_inds (optional; source frame numbers, else 0..N-1)
        - body_boxes (optional, from :class:`BackgroundRemoval`: the pose model searches the
          keyframe's body box; a fallback centres on the union of the keyframes' boxes)
        - original_imgs (with ``pose_input='original'``)
        - filename (optional; names the video in the fallback warning)

    Modified keys:
        - imgs (list of (out_size, out_size, 3) uint8), img_shape

    Added keys:
        - alignment_matrix (float32 (N, 2, 3): source pixel -> aligned pixel, per frame)
        - body_frame (dict of centre, length, angle ...; a list of them, one per window, with
          ``mode='window'``)
        - alignment_fallback (str or None), alignment_mode
        - pose_keypoints (float32 (M, K, 2)), pose_scores (float32 (M, K)),
          pose_frame_positions (int64 (M,)): the raw estimates on the M keyframes

    Args:
        config (str, optional): mmpose top-down config file (None with ``model``).
        checkpoint (str, optional): its weights (a local path). None builds the model with
            random weights, which only shows that a config runs. Defaults to None.
        device (str): where the model runs. Defaults to 'cpu'.
        keyframe_interval (int): estimate keypoints every this many source frames.
            Defaults to 30 (the paper).
        mode (str): 'video' (one transform, the paper) or 'window' (one per window).
            Defaults to 'video'.
        window_length (int): source frames per window in 'window' mode. Defaults to 150.
        scale (float): crop side in trunk lengths. Defaults to 3.75 (the paper).
        out_size (int): side of the aligned square frames. Defaults to 224 (the paper).
        min_keypoint_score (float): shoulders and hips must all score above it.
            Defaults to 0.3.
        batch_size (int): keyframes per model call. Defaults to 16.
        pose_input (str): 'masked' estimates keypoints on the background-removed frames (the
            paper); 'original' on the unmasked ones (``BackgroundRemoval(keep_original=True)``),
            which keeps alignment independent of segmentation errors. Defaults to 'masked'.
        min_usable_fraction (float): alignment falls back unless at least this share of the
            keyframes gives a usable estimate (shoulders and hips above
            ``min_keypoint_score``): a transform averaged from a few lucky keyframes of a
            video the pose model does not understand is not trusted. Defaults to 0.0 (one
            usable keyframe suffices); the chain configs set it from validation videos.
        test_time_rotations (int): 1 (off), 2 or 4: also estimate on the keyframes turned by
            180 (and 90, 270) degrees and take the per-coordinate median of the estimates
            mapped back (scores: the mean). Infants lie in any orientation, so this averages
            out orientation-dependent keypoint errors at 2 or 4 times the pose cost.
            Defaults to 1.
        model (dict, optional): instead of ``config``, a registered packaged model whose
            weights come inside an installed package and which gives COCO-17 keypoints, e.g.
            ``dict(type='MediaPipePoseLandmarks')`` (run with LiteRT; see
            :mod:`gm_plugins.preprocess.litert_models`). Defaults to None.
    """

    def __init__(
        self,
        config: str | None = None,
        checkpoint: str | None = None,
        device: str = "cpu",
        keyframe_interval: int = 30,
        mode: str = "video",
        window_length: int = 150,
        scale: float = 3.75,
        out_size: int = 224,
        min_keypoint_score: float = 0.3,
        batch_size: int = 16,
        pose_input: str = "masked",
        test_time_rotations: int = 1,
        min_usable_fraction: float = 0.0,
        model: dict | None = None,
    ) -> None:
        if not 0.0 <= min_usable_fraction <= 1.0:
            raise ValueError(f"min_usable_fraction={min_usable_fraction!r}: must lie in [0, 1]")
        if mode not in ALIGNMENT_MODES:
            raise ValueError(f"mode={mode!r}: choose one of {ALIGNMENT_MODES}")
        if pose_input not in POSE_INPUTS:
            raise ValueError(f"pose_input={pose_input!r}: choose one of {POSE_INPUTS}")
        if test_time_rotations not in (1, 2, 4):
            raise ValueError(f"test_time_rotations={test_time_rotations!r}: choose 1, 2 or 4")
        if keyframe_interval < 1 or window_length < 1 or scale <= 0 or out_size < 1:
            raise ValueError("keyframe_interval, window_length, scale and out_size must be > 0")
        self.model = model
        self._packaged = None
        if model is not None:
            if config is not None or checkpoint is not None:
                raise ValueError(
                    "PoseAlignment: give either config (+ checkpoint) or model, not both"
                )
            self._packaged = build_packaged_model(model, "pose")
        elif config is None:
            raise ValueError(
                "PoseAlignment needs config= (an mmpose top-down config file, with checkpoint=) "
                "or model=dict(type=...) (a packaged model such as MediaPipePoseLandmarks)"
            )
        else:
            check_model_files("mmpose", config, checkpoint)
        self.config = config
        self.checkpoint = checkpoint
        self.device = device
        self.keyframe_interval = keyframe_interval
        self.mode = mode
        self.window_length = window_length
        self.scale = scale
        self.out_size = out_size
        self.min_keypoint_score = min_keypoint_score
        self.batch_size = batch_size
        self.pose_input = pose_input
        self.test_time_rotations = test_time_rotations
        self.min_usable_fraction = min_usable_fraction
        self._runner: BatchRunner | None = None
        self._warned = False

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _runner=None)  # workers reload from the process cache

    @property
    def runner(self) -> BatchRunner | object:
        """The model and its test pipeline, loaded on first use (once per process); the
        packaged model (its interpreter loaded) when the step has one."""
        if self._packaged is not None:
            self._packaged.interpreter  # noqa: B018  (loads on first access)
            return self._packaged
        if self._runner is None:
            model = load_model("mmpose", self.config, self.checkpoint, self.device)
            self._runner = BatchRunner(model, "mmpose", self.batch_size)
        return self._runner

    def estimate_keypoints(
        self, frames: list[np.ndarray], boxes: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """One person per RGB frame inside its (x1, y1, x2, y2) box -> (M, K, 2), (M, K).

        With ``test_time_rotations`` > 1 the frames are also turned by multiples of
        360 / test_time_rotations degrees; the estimates are mapped back and combined.
        """
        if self.test_time_rotations == 1 or not frames:
            return self._estimate_once(frames, boxes)
        sizes = [(frame.shape[1], frame.shape[0]) for frame in frames]  # (W, H)
        all_keypoints, all_scores = [], []
        for quarter_turns in range(0, 4, 4 // self.test_time_rotations):
            turned = [np.ascontiguousarray(np.rot90(frame, quarter_turns)) for frame in frames]
            turned_boxes = [
                geometry.rotate90_box(box, quarter_turns, size)
                for box, size in zip(boxes, sizes, strict=True)
            ]
            keypoints, scores = self._estimate_once(turned, turned_boxes)
            # undo: 4 - k turns of the turned image, whose sides are swapped for odd k
            back = [
                geometry.rotate90_points(
                    points, 4 - quarter_turns, size if quarter_turns % 2 == 0 else size[::-1]
                )
                for points, size in zip(keypoints, sizes, strict=True)
            ]
            all_keypoints.append(np.stack(back))
            all_scores.append(scores)
        return (
            np.median(np.stack(all_keypoints), 0).astype(np.float32),
            np.mean(np.stack(all_scores), 0).astype(np.float32),
        )

    def _estimate_once(
        self, frames: list[np.ndarray], boxes: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        if self._packaged is not None:
            return self._packaged(frames, boxes)
        meta = self.runner.model.dataset_meta or {}
        samples = [
            dict(
                img=rgb_to_model_input(frame),
                bbox=box[None].astype(np.float32),
                bbox_score=np.ones(1, np.float32),
                **meta,
            )
            for frame, box in zip(frames, boxes, strict=True)
        ]
        predictions = self.runner(samples)
        keypoints = np.stack([p.pred_instances.keypoints[0] for p in predictions])
        scores = np.stack([p.pred_instances.keypoint_scores[0] for p in predictions])
        return keypoints.astype(np.float32), scores.astype(np.float32)

    def _pose_frames(self, results: dict) -> list[np.ndarray]:
        if self.pose_input == "masked":
            return results["imgs"]
        if "original_imgs" not in results:
            raise KeyError(
                "PoseAlignment(pose_input='original') needs results['original_imgs']: set "
                "keep_original=True in BackgroundRemoval"
            )
        return results["original_imgs"]

    def keyframe_positions(self, frame_inds: np.ndarray) -> np.ndarray:
        """Positions of the frames (of ``frame_inds``) whose pose is estimated."""
        return keyframe_positions(frame_inds, self.keyframe_interval)

    def plan(
        self,
        frame_inds: np.ndarray,
        keyframes: list[np.ndarray],
        keyframe_boxes: np.ndarray | None,
        frame_size: tuple[int, int],
        filename: str = "clip",
    ) -> dict:
        """Estimate the trunk on the keyframes and make every frame's alignment matrix.

        Args:
            frame_inds: (N,) source frame numbers of all frames of the clip.
            keyframes: the M frames at :meth:`keyframe_positions` that the pose model sees.
            keyframe_boxes: (M, 4) body boxes of those frames (NaN rows: no body found), or
                None without background removal (the whole frame is searched).
            frame_size: (W, H) of the source frames.

        Returns:
            dict with ``alignment_matrix`` (N, 2, 3), ``body_frame``, ``alignment_fallback``,
            ``alignment_mode``, ``alignment_usable_fraction`` (share of the keyframes with a
            usable estimate), ``pose_keypoints`` (M, K, 2), ``pose_scores`` (M, K) and
            ``pose_frame_positions`` (M,).
        """
        boxes = person_boxes(keyframe_boxes, len(keyframes), frame_size)
        keypoints, scores = self.estimate_keypoints(keyframes, boxes)
        return self.plan_from_estimates(
            frame_inds, keypoints, scores, keyframe_boxes, frame_size, filename
        )

    def plan_from_estimates(
        self,
        frame_inds: np.ndarray,
        keypoints: np.ndarray,
        scores: np.ndarray,
        keyframe_boxes: np.ndarray | None,
        frame_size: tuple[int, int],
        filename: str = "clip",
    ) -> dict:
        """:meth:`plan` from pose estimates already made: (M, K, 2) keypoints, (M, K) scores."""
        frame_inds = np.asarray(frame_inds)
        positions = self.keyframe_positions(frame_inds)
        centers, lengths, angles, valid = geometry.trunk_estimates(
            keypoints, scores, self.min_keypoint_score
        )
        usable = float(np.mean(valid)) if len(valid) else 0.0
        video_body = geometry.aggregate_body_frame(centers[valid], lengths[valid], angles[valid])
        fallback = None
        if video_body is not None and usable < self.min_usable_fraction:
            video_body = None  # too few keyframes to trust: the same fallback as none at all
        if video_body is None:
            body_box = None if keyframe_boxes is None else union_box(keyframe_boxes)
            fallback = self._fallback_reason(filename, body_box, len(positions), int(valid.sum()))
            video_body = geometry.fallback_body_frame(body_box, frame_size, self.scale)
            valid = np.zeros_like(valid)  # no segment may use the few estimates either
        matrices, bodies = self._segment_transforms(
            frame_inds,
            positions[valid],
            (centers[valid], lengths[valid], angles[valid]),
            video_body,
        )
        if fallback is not None:
            for body in bodies:
                body["source"] = "fallback"
        return dict(
            alignment_matrix=matrices,
            body_frame=bodies[0] if self.mode == "video" else bodies,
            alignment_fallback=fallback,
            alignment_mode=self.mode,
            alignment_usable_fraction=round(usable, 6),
            pose_keypoints=keypoints,
            pose_scores=scores,
            pose_frame_positions=positions.astype(np.int64),
        )

    def transform(self, results: dict) -> dict:
        frames = results["imgs"]
        frame_inds = np.asarray(results.get("frame_inds", np.arange(len(frames))))
        positions = self.keyframe_positions(frame_inds)
        pose_frames = self._pose_frames(results)
        boxes = results.get("body_boxes")
        plan = self.plan(
            frame_inds,
            [pose_frames[i] for i in positions],
            None if boxes is None else np.asarray(boxes)[positions],
            (frames[0].shape[1], frames[0].shape[0]),
            results.get("filename", "clip"),
        )
        results.update(plan)
        results["imgs"] = warp_frames(frames, plan["alignment_matrix"], self.out_size)
        results["img_shape"] = (self.out_size, self.out_size)
        return results

    def _segment_transforms(self, frame_inds, valid_positions, estimates, video_body):
        """Per-frame matrices (N, 2, 3) and per-segment body frames (dicts)."""
        centers, lengths, angles = estimates
        matrices = np.empty((len(frame_inds), 2, 3), np.float32)
        bodies = []
        for start, stop in segment_bounds(frame_inds, self.mode, self.window_length):
            inside = (valid_positions >= start) & (valid_positions < stop)
            body = geometry.aggregate_body_frame(centers[inside], lengths[inside], angles[inside])
            source = "window" if self.mode == "window" else "video"
            if body is None:
                body, source = video_body, "video"
            matrix = geometry.alignment_matrix(body, self.scale, self.out_size)
            matrices[start:stop] = matrix
            bodies.append(
                dict(body.to_dict(), frames=[start, stop], source=source, matrix=matrix.tolist())
            )
        return matrices, bodies

    def _fallback_reason(
        self, filename: str, body_box: np.ndarray | None, keyframes: int, usable: int = 0
    ) -> str:
        on = (
            "the infant mask"
            if body_box is not None and np.all(np.isfinite(body_box))
            else ("the frame")
        )
        if usable:
            what = (
                f"only {usable} of {keyframes} keyframes had both shoulders and both hips above "
                f"min_keypoint_score={self.min_keypoint_score}, fewer than "
                f"min_usable_fraction={self.min_usable_fraction:g} of them"
            )
        else:
            what = (
                f"no pose estimate had both shoulders and both hips above min_keypoint_score="
                f"{self.min_keypoint_score} ({keyframes} keyframes)"
            )
        reason = f"{what}; frames kept unrotated, centred on {on}"
        if not self._warned:
            warnings.warn(f"{filename}: {reason}", stacklevel=2)
            self._warned = True
        return reason

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(config='{self.config}', checkpoint='{self.checkpoint}', "
            f"device='{self.device}', keyframe_interval={self.keyframe_interval}, "
            f"test_time_rotations={self.test_time_rotations}, "
            f"mode='{self.mode}', window_length={self.window_length}, scale={self.scale}, "
            f"out_size={self.out_size}, min_keypoint_score={self.min_keypoint_score}, "
            f"batch_size={self.batch_size}, pose_input='{self.pose_input}', "
            f"min_usable_fraction={self.min_usable_fraction}, model={self.model!r})"
        )


def letterbox_matrix(width: int, height: int, out_size: int) -> np.ndarray:
    """(2, 3) matrix fitting a ``width`` x ``height`` frame into an ``out_size`` square, centred."""
    scale = out_size / max(width, height)
    return np.array(
        [
            [scale, 0.0, (out_size - scale * width) / 2.0],
            [0.0, scale, (out_size - scale * height) / 2.0],
        ],
        np.float32,
    )


@TRANSFORMS.register_module()
class LetterboxFrames(BaseTransform):
    """Fit whole frames into an ``out_size`` square (black bars): no body position adjustment.

    The "without alignment" ablation: the frames keep the infant where the camera saw it, at
    the camera's scale and rotation, and go to the same square size as :class:`PoseAlignment`
    gives, so the same classifier config trains on either cache.

    Required keys:
        - imgs (list of (H, W, 3) uint8)

    Modified keys:
        - imgs (list of (out_size, out_size, 3) uint8), img_shape

    Added keys:
        - alignment_matrix (float32 (N, 2, 3): source pixel -> output pixel, per frame)
        - alignment_mode ('letterbox'), alignment_fallback (None)

    Args:
        out_size (int): side of the output squares. Defaults to 224.
    """

    def __init__(self, out_size: int = 224) -> None:
        if out_size < 1:
            raise ValueError(f"out_size must be >= 1, got {out_size}")
        self.out_size = out_size

    def transform(self, results: dict) -> dict:
        frames = results["imgs"]
        height, width = frames[0].shape[:2]
        matrix = letterbox_matrix(width, height, self.out_size)
        matrices = np.repeat(matrix[None], len(frames), 0)
        results["imgs"] = warp_frames(frames, matrices, self.out_size)
        results["img_shape"] = (self.out_size, self.out_size)
        results["alignment_matrix"] = matrices
        results["alignment_mode"] = "letterbox"
        results["alignment_fallback"] = None
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(out_size={self.out_size})"
