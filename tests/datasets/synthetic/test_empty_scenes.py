"""Scenes without an infant: their table, their videos, and what moves in each kind."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest

from gm_plugins.datasets.subjects import read_subjects
from gm_plugins.datasets.synthetic import (
    EMPTY_SCENE_KINDS,
    EmptyScene,
    EmptySceneSpec,
    generate_dataset,
    make_empty_specs,
)

from .conftest import TINY

WITH_EMPTY = dataclasses.replace(TINY, empty_scenes=4)


@pytest.fixture(scope="module")
def dataset_with_empty_scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("empty") / "data"
    generate_dataset(out, WITH_EMPTY, progress=False)
    return out


def _video_format(path) -> tuple[int, int, float, int]:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    width, height = (
        int(capture.get(p)) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT)
    )
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return width, height, round(fps, 3), count


def test_table_videos_and_ground_truth(dataset_with_empty_scenes, tiny_dataset):
    out = dataset_with_empty_scenes
    header = (out / "empty_scenes.csv").read_text().splitlines()[0]
    assert header == "subject_id,label,environment,video,scene_kind"
    rows = read_subjects(out / "empty_scenes.csv", require_label=False)
    assert [r["subject_id"] for r in rows] == ["e0000", "e0001", "e0002", "e0003"]
    assert {r["scene_kind"] for r in rows} == set(EMPTY_SCENE_KINDS)
    assert all(r["label"] == "" for r in rows)
    infant = read_subjects(out / "subjects.csv")[0]
    same_format = _video_format(out / infant["video"])
    assert same_format == (TINY.width, TINY.height, TINY.fps, TINY.num_frames)
    for row in rows:
        assert _video_format(out / row["video"]) == same_format
        gt = np.load(out / "gt" / f"{row['subject_id']}.npz")
        assert gt["masks"].shape == (TINY.num_frames, TINY.height, TINY.width)
        assert not gt["masks"].any() and not gt["keypoints"][..., 2].any()
        assert str(gt["scene_kind"]) == row["scene_kind"] and str(gt["label"]) == ""
        assert json.loads(str(gt["params"]))["environment"] == row["environment"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] and sum(meta["empty_scene_counts"].values()) == 4
    # adding empty scenes leaves the infants as they were
    one_worker, _ = tiny_dataset
    assert (out / "subjects.csv").read_bytes() == (one_worker / "subjects.csv").read_bytes()
    assert (out / infant["video"]).read_bytes() == (one_worker / infant["video"]).read_bytes()
    assert not (one_worker / "empty_scenes.csv").exists()


def test_specs_are_balanced_and_reproducible():
    specs = make_empty_specs(7, seed=4)
    kinds = [s.kind for s in specs]
    assert max(map(kinds.count, EMPTY_SCENE_KINDS)) - min(map(kinds.count, EMPTY_SCENE_KINDS)) <= 1
    assert specs == make_empty_specs(7, seed=4) and specs != make_empty_specs(7, seed=5)


def _clean_frames(kind: str, environment: str = "mattress", index: int = 0) -> np.ndarray:
    """Frames of a 4 s scene at 15 fps without camera noise, (T, H, W, 3)."""
    scene = EmptyScene(EmptySceneSpec("e0000", kind, environment, 1, index), (96, 72), 15, 60)
    scene.sensor.expose = lambda rgb, t: None
    return np.stack([scene.render(t)[0] for t in range(60)]).astype(np.int16)


def _changed_share(frames: np.ndarray) -> np.ndarray:
    """Per frame, the share of pixels that differ from frame 0 by more than 20 levels, (T,)."""
    return (np.abs(frames - frames[:1]).max(-1) > 20).mean((1, 2))


def test_an_empty_scene_holds_still():
    frames = _clean_frames("empty")
    assert np.array_equal(frames, np.broadcast_to(frames[:1], frames.shape))
    assert frames.std() > 1  # bedding, not a flat fill


@pytest.mark.parametrize("index", range(3))
def test_distractors_move_over_part_of_the_frame(index):
    changed = _changed_share(_clean_frames("distractor", index=index))
    assert 0.01 < changed.max() < 0.6  # something comes and goes, the bedding stays


@pytest.mark.parametrize("index", range(3))
def test_a_moving_texture_covers_much_of_the_frame(index):
    frames = _clean_frames("texture", index=index)
    assert _changed_share(frames).max() > 0.3
    step = np.abs(np.diff(frames, axis=0)).max(-1) > 10
    assert step.mean() > 0.05  # it keeps moving, frame after frame


def test_rendering_is_reproducible_and_kinds_are_checked():
    spec = EmptySceneSpec("e0003", "texture", "quilt", 8, 3)
    a, b = (EmptyScene(spec, (64, 48), 10, 12).render(7)[0] for _ in range(2))
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="unknown empty scene kind"):
        EmptyScene(dataclasses.replace(spec, kind="cot"), (64, 48), 10, 12)


def _background_change(renders: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean background change of rendered (frame, true mask) pairs, camera noise included."""
    from gm_plugins.preprocess.transforms.background import SceneChanges, motion_thumbnail

    changes = SceneChanges()
    values = [
        changes.add(*motion_thumbnail(rgb, mask.astype(np.float32)))[0] for rgb, mask in renders
    ]
    return float(np.nanmean(values))


def test_moving_texture_changes_the_background_and_a_lying_infant_does_not():
    """What the background-change figure tells apart, on the generator's own frames at 6 fps."""
    from gm_plugins.datasets.synthetic import SubjectSpec, SyntheticSubject

    size, fps, frames = (160, 120), 6, 18
    infants = [
        SyntheticSubject(SubjectSpec(f"s{i}", "FMs", "sheet", 4, 0, i), size, fps, frames)
        for i in range(3)
    ]
    infants = [s for s in infants if not s.distractors]  # the infant alone moves
    assert infants
    for infant in infants:
        renders = [infant.render(t) for t in range(frames)]
        assert _background_change(renders) < 0.01
    for index in range(3):
        scene = EmptyScene(EmptySceneSpec("e0000", "texture", "sheet", 4, index), size, fps, frames)
        renders = [scene.render(t) for t in range(frames)]
        assert _background_change(renders) > 0.03
        still = EmptyScene(EmptySceneSpec("e0001", "empty", "sheet", 4, index), size, fps, frames)
        assert _background_change([still.render(t) for t in range(frames)]) == 0.0
