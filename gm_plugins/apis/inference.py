"""Classify new videos: one decision per infant from a bundle (or a config and checkpoint).

Follows MMAction2's conventions: :func:`init_gm_model` is the counterpart of
``mmaction.apis.init_recognizer`` (it uses it to build the recognizer), and
:class:`GMInferencer` that of its inferencers: models load once, ``inferencer(videos)`` returns
one result per video.

Each video runs through the same preprocessing transforms as offline preprocessing
(:func:`gm_plugins.preprocess.streaming.preprocess_in_memory`: the cache entry, kept in
memory), is cut into the classifier's test windows (:mod:`gm_plugins.datasets.windows`), and
each window goes through the classifier config's own test pipeline (``LoadCachedWindow`` +
``PackStreamInputs``) and ``model.test_step``. The window probabilities are aggregated as the
classifier's ``SubjectMetric`` does. No label is needed anywhere.

A result says "uncertain" instead of a class (``abstained``) when the top probability is below
the bundle's threshold, when preprocessing fell back (no infant found, nothing moves, alignment
failed or too few keyframes with a usable pose), when the video is too short for the windows,
and, with a bundle fitted on its validation infants (:mod:`gm_plugins.deploy.validation`), when
its quality figures fall outside the validation infants' ranges or its windows disagree more
than theirs did; it lists why. Such a bundle's window probabilities are calibrated by its
temperature before they are aggregated, and every result gives its window agreement.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config

from gm_plugins.deploy.bundle import RELIABILITY_DIAGRAM, Abstention, Bundle, load_bundle
from gm_plugins.preprocess.streaming import build_preprocess_pipeline, preprocess_in_memory

from ..datasets.cache import CachedVideo, dequantise_flow
from ..datasets.gm_dataset import fallback_reason
from ..datasets.subjects import GM_CLASSES
from ..datasets.windows import WindowSpec
from ..evaluation.aggregation import mean_decision, vote_decision
from ..evaluation.calibration import (
    apply_temperature,
    window_agreement,
    window_mutual_information,
)
from ..evaluation.domain import outside_domain, video_figures
from ..evaluation.window_scores import WindowScorer
from ..models.loading import load_recognizer
from ..preprocess.chain import read_chain_config
from ..utils.config import ConfigError, load_config

UNCERTAIN = "uncertain"
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")


@dataclass
class GMModel:
    """A classifier ready for inference, with the chain and settings it was trained with.

    Attributes:
        recognizer: the mmaction recognizer in eval mode (its ``cfg`` attribute is the config).
        cfg: the classifier config.
        preprocess_pipeline: the chain's step configs (model paths absolute).
        class_names: the classes, in score order.
        window: the test windows.
        aggregation: ``'mean'`` or ``'vote'`` (the classifier's ``SubjectMetric``).
        abstention: when a result says "uncertain".
        bundle: the bundle it came from, or None.
    """

    recognizer: torch.nn.Module
    cfg: Config
    preprocess_pipeline: list[dict]
    class_names: tuple[str, ...]
    window: WindowSpec
    aggregation: str = "mean"
    abstention: Abstention = field(default_factory=Abstention)
    bundle: Bundle | None = None
    device: str = "cpu"


def init_gm_model(
    bundle_or_config: str | os.PathLike | Config,
    checkpoint: str | os.PathLike | None = None,
    device: str = "cpu",
    preprocess_config: str | os.PathLike | None = None,
    abstention: Abstention | None = None,
    optimize: bool = True,
    segmentation_backend: str | None = None,
) -> GMModel:
    """Load a classifier for inference from a bundle, or from a config and its checkpoint.

    Args:
        bundle_or_config: a bundle folder or ``.zip`` (:mod:`gm_plugins.deploy.bundle`), or a
            classifier config (path or Config) whose ``preprocess_config`` names its chain.
        checkpoint: the classifier checkpoint; required with a config (random weights would
            classify nothing), not allowed with a bundle (it holds its own).
        device: torch device of the classifier.
        preprocess_config: the chain config, overriding the config's key (configs only).
        abstention: overrides the bundle's (or the default) abstention settings.
        optimize: fold BatchNorm into the convolutions and store their weights NHWC (about
            twice as fast on CPUs), kept only if example windows give the same logits within
            1e-4; False runs the checkpoint's modules as they are.
        segmentation_backend: 'pytorch' or 'onnxruntime' for the chain's BackgroundRemoval
            (None: as the chain says); ONNX Runtime gives the same masks within float rounding,
            about twice as fast on CPUs (see :class:`BackgroundRemoval`).
    """
    model = _init_gm_model(
        bundle_or_config, checkpoint, device, preprocess_config, abstention, optimize
    )
    if segmentation_backend is not None:
        model.preprocess_pipeline = with_segmentation_backend(
            model.preprocess_pipeline, segmentation_backend
        )
    return model


def with_segmentation_backend(steps: list[dict], backend: str) -> list[dict]:
    """A copy of a chain whose BackgroundRemoval steps run on ``backend``."""
    from gm_plugins.preprocess.model_runners import SEGMENTATION_BACKENDS

    if backend not in SEGMENTATION_BACKENDS:
        raise ValueError(f"segmentation backend {backend!r}: choose one of {SEGMENTATION_BACKENDS}")
    steps = [dict(step) for step in steps]
    for step in steps:
        if str(step.get("type", "")).split(".")[-1] == "BackgroundRemoval":
            step["backend"] = backend
    return steps


def _init_gm_model(
    bundle_or_config: str | os.PathLike | Config,
    checkpoint: str | os.PathLike | None,
    device: str,
    preprocess_config: str | os.PathLike | None,
    abstention: Abstention | None,
    optimize: bool,
) -> GMModel:
    path = None if isinstance(bundle_or_config, Config) else Path(bundle_or_config)
    if path is not None and (path.is_dir() or path.suffix == ".zip"):
        if checkpoint is not None or preprocess_config is not None:
            raise ValueError(f"{path} is a bundle: it holds its checkpoint and chain already")
        bundle = load_bundle(path)
        recognizer = load_recognizer(
            bundle.classifier_config, bundle.classifier_checkpoint, device, optimize
        )
        return GMModel(
            recognizer=recognizer,
            cfg=bundle.classifier_config,
            preprocess_pipeline=bundle.preprocess_pipeline,
            class_names=bundle.class_names,
            window=WindowSpec(**bundle.window),
            aggregation=bundle.aggregation,
            abstention=abstention or bundle.abstention,
            bundle=bundle,
            device=device,
        )
    cfg = bundle_or_config if isinstance(bundle_or_config, Config) else load_config(path)
    if checkpoint is None:
        raise ValueError(
            "checkpoint=None: a classifier with random weights classifies nothing; pass the "
            "checkpoint tools/train.py wrote (or a bundle from tools/deployment/export_bundle.py)"
        )
    chain_path = preprocess_config or cfg.get("preprocess_config", None)
    if chain_path is None:
        raise ConfigError(
            "the classifier config names no preprocess_config (the chain its cache was made "
            "with): add it to the config or pass preprocess_config"
        )
    chain = read_chain_config(chain_path)
    dataset = cfg.test_dataloader.dataset
    evaluator = cfg.get("test_evaluator", {})
    return GMModel(
        recognizer=load_recognizer(cfg, checkpoint, device, optimize),
        cfg=cfg,
        preprocess_pipeline=[dict(step) for step in chain.preprocess_pipeline],
        class_names=tuple(cfg.get("classes", None) or GM_CLASSES),
        window=WindowSpec(**dataset.window),
        aggregation=str(evaluator.get("aggregation", "mean")),
        abstention=abstention or Abstention(),
        device=device,
    )


def find_videos(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand folders into their video files (sorted, by suffix); files are kept as given."""
    videos: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise FileNotFoundError(
                    f"{path} holds no video ({', '.join(VIDEO_SUFFIXES)}): pass video files "
                    "or a folder of them"
                )
            videos.extend(found)
        else:
            videos.append(path)
    return videos


class GMInferencer:
    """Classify videos with a trained model; models are loaded once.

    Example::

        inferencer = GMInferencer("work_dirs/demo/bundle")
        result = inferencer("infant.mp4")[0]
        print(result["decision"], result["class_probabilities"])

    Args:
        model: a :class:`GMModel`, or what :func:`init_gm_model` takes (bundle or config).
        checkpoint, device: passed to :func:`init_gm_model` when ``model`` is a path.
        keep_images: also return the stage images of the contact sheet (``images`` in each
            result: original, mask, background removed, aligned, flow; uint8 RGB).
    """

    def __init__(
        self,
        model: GMModel | str | os.PathLike,
        checkpoint: str | os.PathLike | None = None,
        device: str = "cpu",
        keep_images: bool = False,
    ) -> None:
        self.model = (
            model if isinstance(model, GMModel) else init_gm_model(model, checkpoint, device)
        )
        self.keep_images = keep_images
        self.chain = build_preprocess_pipeline(self.model.preprocess_pipeline)
        self.scorer = WindowScorer(
            self.model.recognizer,
            self.model.cfg,
            self.model.window,
            len(self.model.class_names),
        )

    def __call__(
        self,
        videos: str | os.PathLike | Iterable[str | os.PathLike],
        out_dir: str | os.PathLike | None = None,
        progress: Callable[[str, str], None] | None = None,
    ) -> list[dict]:
        """Classify one video or many; a video that fails gets ``status='failed'``.

        Args:
            videos: a video path, a folder of videos, or a list of them.
            out_dir: also write ``<out_dir>/<name>/result.json`` and ``report.html`` per video
                and ``summary.csv`` and ``index.html`` (see :mod:`gm_plugins.apis.infer_outputs`).
            progress: called as ``progress(video_name, stage)`` when a stage starts.

        Returns:
            One JSON-ready dict per video (see :meth:`classify`).
        """
        if isinstance(videos, (str, os.PathLike)):
            videos = [videos]
        paths = find_videos(videos)
        results = []
        for path in paths:
            try:
                result = self.classify(path, progress=progress)
            except Exception as error:  # one bad video must not stop the batch
                result = dict(
                    video=str(path),
                    name=video_name(path),
                    status="failed",
                    error=f"{type(error).__name__}: {error}",
                )
            results.append(result)
        if out_dir is not None:
            from .infer_outputs import write_outputs

            write_outputs(results, out_dir, self.model)
        return results

    def preprocess(self, video: str | os.PathLike) -> CachedVideo:
        """The video's preprocessed entry, in memory (the cache entry it would get)."""
        keep = "middle" if self.keep_images else None
        return preprocess_in_memory(
            self.chain, video, subject_id=video_name(video), keep_original=keep
        )

    def window_probabilities(self, entry: CachedVideo) -> tuple[np.ndarray, list[dict]]:
        """(W, K) window probabilities of a preprocessed video (before any calibration) and
        each window's times."""
        return self.scorer(entry)

    def classify(
        self, video: str | os.PathLike, progress: Callable[[str, str], None] | None = None
    ) -> dict:
        """Classify one video; raises on a video that cannot be read.

        Returns:
            dict with ``video``, ``name``, ``status`` ('ok'), ``decision`` (a class name or
            'uncertain'), ``predicted_class``, ``confidence``, ``abstained``,
            ``abstain_reasons``, ``class_names``, ``class_probabilities``, ``windows`` (index,
            ``start_s``, ``end_s``, probabilities, calibrated), ``reliability`` (temperature,
            window agreement, mutual information), ``quality``, ``warnings``, ``bundle`` and
            ``timings_s``; with ``keep_images`` also ``images`` (not JSON).
        """
        name = video_name(video)
        timings: dict[str, float] = {}
        report = progress or (lambda _name, _stage: None)
        report(name, "preprocess")
        started = time.perf_counter()
        entry = self.preprocess(video)
        timings["preprocess"] = time.perf_counter() - started
        report(name, "classify")
        started = time.perf_counter()
        probabilities, windows = self.window_probabilities(entry)
        uncalibrated = probabilities
        temperature = self.model.bundle.temperature if self.model.bundle is not None else 1.0
        if len(probabilities) and temperature != 1.0:
            probabilities = apply_temperature(probabilities, temperature)
        timings["classify"] = time.perf_counter() - started
        classes = self.model.class_names
        for window, row in zip(windows, probabilities, strict=True):
            window["probabilities"] = _named(classes, row)
        quality, warnings = quality_summary(entry.meta)
        validation = self.model.bundle.validation if self.model.bundle is not None else None
        few_keyframes = too_few_usable_keyframes(quality, validation)
        if few_keyframes and not quality["fallback"]:
            quality.update(fallback="alignment_failed", fallback_detail=few_keyframes)
            warnings.append(
                f"alignment fell back ({few_keyframes}): the classifier saw the infant "
                "unrotated and at another scale than in training"
            )
        result: dict = dict(video=str(video), name=name, status="ok", class_names=list(classes))
        if len(probabilities):
            decide = mean_decision if self.model.aggregation == "mean" else vote_decision
            top, scores = decide(probabilities)
            result.update(
                predicted_class=classes[top],
                confidence=round(float(scores[top]), 6),
                class_probabilities=_named(classes, scores),
            )
            _, raw_scores = decide(uncalibrated)
            result["reliability"] = dict(
                temperature=round(temperature, 6),
                uncalibrated_probabilities=_named(classes, raw_scores),
                window_agreement=round(window_agreement(probabilities, top), 6),
                mutual_information=round(window_mutual_information(probabilities), 6),
            )
        else:
            result.update(predicted_class=None, confidence=None, class_probabilities=None)
            result["reliability"] = dict(
                temperature=round(temperature, 6), window_agreement=None, mutual_information=None
            )
        reasons = self._abstain_reasons(result, len(windows), entry, quality)
        result.update(
            decision=UNCERTAIN if reasons else result["predicted_class"],
            abstained=bool(reasons),
            abstain_reasons=reasons,
            windows=windows,
            quality=quality,
            warnings=warnings,
            bundle=self._bundle_record(),
            aggregation=self.model.aggregation,
        )
        if self.keep_images:
            report(name, "images")
            started = time.perf_counter()
            result["images"] = self.stage_images(video, entry)
            timings["images"] = time.perf_counter() - started
        result["timings_s"] = {key: round(value, 3) for key, value in timings.items()}
        return result

    def _abstain_reasons(
        self, result: dict, num_windows: int, entry: CachedVideo, quality: dict
    ) -> list[str]:
        rules = self.model.abstention
        reasons = []
        if num_windows < rules.min_windows:
            spec = self.model.window
            reasons.append(
                f"the video gives {num_windows} classifier window(s) of {spec.span:g} "
                f"{spec.unit}, at least {rules.min_windows} needed: it is too short "
                f"({quality.get('duration_s')} s)"
            )
        fallback = quality.get("fallback")
        if rules.on_fallback and fallback:
            detail = quality.get("fallback_detail")
            reasons.append(
                f"preprocessing fell back: {fallback}" + (f" ({detail})" if detail else "")
            )
        validation = self.model.bundle.validation if self.model.bundle is not None else None
        if validation and rules.outside_domain:
            outside = outside_domain(validation["domain"]["figures"], quality)
            if outside:
                reasons.append("outside the model's training domain: " + "; ".join(outside))
        confidence = result.get("confidence")
        if confidence is not None and confidence < rules.min_probability:
            reasons.append(
                f"top probability {confidence:.3f} ({result['predicted_class']}) is below the "
                f"bundle's threshold {rules.min_probability:g}"
            )
        agreement = result["reliability"]["window_agreement"]
        if validation and rules.on_disagreement and agreement is not None:
            least = validation["agreement"]["min_window_agreement"]
            if agreement < least:
                reasons.append(
                    f"the windows disagree: {agreement:.0%} of them give "
                    f"{result['predicted_class']}, validation infants decided correctly had at "
                    f"least {least:.0%}"
                )
        return reasons

    def _bundle_record(self) -> dict:
        bundle = self.model.bundle
        if bundle is None:
            return dict(path=None, name=None, manifest_sha256=None)
        record = dict(
            path=str(bundle.root), name=bundle.name, manifest_sha256=bundle.manifest_sha256
        )
        if bundle.validation:
            record["validation"] = validation_summary(bundle.validation)
            diagram = bundle.root / RELIABILITY_DIAGRAM
            if diagram.is_file():
                record["reliability_diagram"] = str(diagram)
        return record

    def stage_images(self, video: str | os.PathLike, entry: CachedVideo) -> dict[str, np.ndarray]:
        """The contact sheet of the middle sampled frame: original, mask, background removed,
        aligned, flow (each uint8 (H, W, 3) RGB; the first three at most 320 px high)."""
        import cv2

        from gm_plugins.preprocess.streaming import streamable_steps
        from gm_plugins.preprocess.transforms.decoding import iter_sampled_frames

        from ..utils.visualization import flow_to_colour, mask_to_rgb

        middle = len(entry.frames) // 2
        images: dict[str, np.ndarray] = {}
        steps = streamable_steps(self.chain)
        original = getattr(entry, "original_frame", None)
        if original is None and steps is not None:  # not kept: decode up to the middle frame
            decode = steps.decode
            target_fps = None if decode.frame_step else decode.target_fps
            frames = iter_sampled_frames(
                video,
                target_fps,
                decode.backend,
                frame_step=decode.frame_step,
                max_side=decode.max_side,
            )
            for position, (_, _, frame) in enumerate(frames):
                if position == middle:
                    original = frame
                    break
        if original is not None:
            scale = min(1.0, 320 / original.shape[0])
            if scale < 1.0:
                size = (round(original.shape[1] * scale), 320)
                original = cv2.resize(original, size, interpolation=cv2.INTER_AREA)
            images["original"] = original
            if steps is not None and steps.background is not None:
                masked = steps.background.mask_frames([original], keep_masks=True)
                images["mask"] = mask_to_rgb(masked.masks[0])
                images["background_removed"] = masked.frames[0]
        flow_index = min(middle, len(entry.flow) - 1)
        aligned = np.asarray(entry.frames[middle])
        flow = flow_to_colour(dequantise_flow(np.asarray(entry.flow[flow_index])))
        factor = max(1, 160 // aligned.shape[0])  # small crops shown enlarged, pixels kept
        for key, image in (("aligned", aligned), ("flow", flow)):
            images[key] = np.repeat(np.repeat(image, factor, 0), factor, 1)
        return images


def _named(classes: tuple[str, ...], values: np.ndarray) -> dict[str, float]:
    return {name: round(float(value), 6) for name, value in zip(classes, values, strict=True)}


def video_name(video: str | os.PathLike) -> str:
    """The name a video's outputs get: its file stem."""
    return Path(video).stem


def quality_summary(meta: dict) -> tuple[dict, list[str]]:
    """The preprocessing quality record of a video for a result, and its warnings.

    Returns:
        (quality, warnings): fps, sample_fps, duration_s, sampled frames, original_shape
        (decoded frames) and source_shape (the video), alignment mode, the gate's figures
        (brightness, mask area and its variation, mask compactness, confidence and box motion,
        keypoint score, plausible skeletons, trunk stability), ``fallback`` (a reason code or
        None) and ``fallback_detail``; warnings are plain sentences.
    """
    recorded = dict(meta.get("quality") or {})
    fps = float(meta.get("fps") or 0.0)
    total = int(meta.get("total_frames") or 0)
    alignment = meta.get("alignment") or {}
    quality = dict(
        fps=fps,
        sample_fps=meta.get("sample_fps"),
        duration_s=recorded.get("duration_s", round(total / fps, 3) if fps > 0 else None),
        sampled_frames=len(meta.get("frame_indices", ())),
        original_shape=meta.get("original_shape"),
        source_shape=meta.get("source_shape", meta.get("original_shape")),
        alignment_mode=alignment.get("mode"),
    )
    for figure, value in video_figures(meta).items():
        quality[figure] = value
    quality["fallback"] = fallback_reason(meta)
    quality["fallback_detail"] = recorded.get("fallback_detail") or alignment.get("fallback")
    warnings = []
    if quality["fallback"] == "no_infant":
        warnings.append(f"no infant found: {quality['fallback_detail']}")
    elif quality["fallback"] == "no_movement":
        warnings.append(f"no movement, not assessable: {quality['fallback_detail']}")
    elif quality["fallback"]:
        warnings.append(
            f"alignment fell back ({quality['fallback_detail']}): the classifier saw the infant "
            "unrotated and at another scale than in training"
        )
    if fps and (fps < 10 or fps > 120):
        warnings.append(f"unusual frame rate {fps:g} fps")
    sample_fps = float(meta.get("sample_fps") or 0.0)
    if fps and sample_fps and fps < sample_fps:
        warnings.append(
            f"recorded at {fps:g} fps, {1 - fps / sample_fps:.0%} below the sampling rate "
            f"{sample_fps:g} fps: every frame was used as one 1/{sample_fps:g} s step"
        )
    return quality, warnings


def validation_summary(validation: dict) -> dict:
    """What a result says of its bundle's validation: infants, calibration, agreement."""
    calibration = validation.get("calibration") or {}
    return dict(
        infants=validation.get("infants"),
        accuracy=validation.get("accuracy"),
        temperature=calibration.get("temperature"),
        ece_before=calibration.get("ece_before"),
        ece_after=calibration.get("ece_after"),
        min_window_agreement=(validation.get("agreement") or {}).get("min_window_agreement"),
        domain_margin=(validation.get("domain") or {}).get("margin"),
    )


def too_few_usable_keyframes(quality: dict, validation: dict | None) -> str | None:
    """Why a video's alignment counts as fallen back although some keyframes had a usable
    pose: fewer of them than the bundle's validation infants had (None: enough, or unknown)."""
    usable = quality.get("usable_keyframe_fraction")
    rule = (
        ((validation or {}).get("domain") or {}).get("figures", {}).get("usable_keyframe_fraction")
    )
    if usable is None or not rule or rule.get("low") is None or usable >= rule["low"]:
        return None
    return (
        f"only {usable:.0%} of the keyframes had a usable pose estimate, below the "
        f"{rule['low']:.0%} the validation infants' range allows (they had "
        f"{rule['min']:.0%}-{rule['max']:.0%})"
    )
