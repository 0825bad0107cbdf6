import csv
import dataclasses
import json
import os
from pathlib import Path

import cv2
import decord
import numpy as np
import pytest
from pycocotools.coco import COCO

from gm_plugins.datasets.synthetic import (
    GM_CLASSES,
    SyntheticSubject,
    generate_dataset,
    make_specs,
)

from .conftest import TINY

REPO = Path(__file__).resolve().parents[3]


def _rows(out):
    with open(out / "subjects.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _decode_cv2(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return np.array(frames)
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def test_layout_and_subject_table(tiny_dataset):
    out, config = tiny_dataset
    rows = _rows(out)
    assert list(rows[0]) == ["subject_id", "label", "environment", "video"]
    assert [r["subject_id"] for r in rows] == [f"s{i:04d}" for i in range(config.subjects)]
    assert {r["label"] for r in rows} <= set(GM_CLASSES)
    for row in rows:
        assert (out / row["video"]).is_file() and row["video"] == f"videos/{row['subject_id']}.mp4"
        assert (out / "gt" / f"{row['subject_id']}.npz").is_file()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] and meta["seed"] == config.seed
    assert meta["arguments"] == config.arguments()
    assert meta["class_counts"] == {c: sum(r["label"] == c for r in rows) for c in GM_CLASSES}


def test_classes_are_balanced():
    for count in (6, 7, 31):
        labels = [s.label for s in make_specs(count, seed=9, confound=0.0)]
        counts = [labels.count(c) for c in GM_CLASSES]
        assert max(counts) - min(counts) <= 1 and sum(counts) == count


def test_ground_truth_arrays(tiny_dataset):
    out, config = tiny_dataset
    for row in _rows(out):
        gt = np.load(out / "gt" / f"{row['subject_id']}.npz")
        keypoints, masks = gt["keypoints"], gt["masks"]
        assert keypoints.dtype == np.float32 and keypoints.shape == (config.num_frames, 17, 3)
        assert masks.dtype == np.uint8 and masks.shape == (
            config.num_frames,
            config.height,
            config.width,
        )
        assert set(np.unique(masks)) <= {0, 1} and masks.any(axis=(1, 2)).all()
        assert set(np.unique(keypoints[..., 2])) <= {0, 1, 2}
        seen = keypoints[..., 2] > 0
        assert (keypoints[..., 0][seen] >= 0).all() and (
            keypoints[..., 0][seen] <= config.width - 1
        ).all()
        assert (keypoints[..., 1][seen] >= 0).all() and (
            keypoints[..., 1][seen] <= config.height - 1
        ).all()
        assert float(gt["fps"]) == config.fps and str(gt["label"]) == row["label"]
        assert json.loads(str(gt["params"]))["environment"] == row["environment"]


def test_both_readers_decode_the_rendered_frames(tiny_dataset):
    out, config = tiny_dataset
    specs = make_specs(config.subjects, config.seed, config.confound)
    for spec in specs[:3]:
        path = out / "videos" / f"{spec.subject_id}.mp4"
        by_cv2 = _decode_cv2(path)
        by_decord = (
            decord.VideoReader(str(path)).get_batch(list(range(config.num_frames))).asnumpy()
        )
        assert (
            by_cv2.shape == by_decord.shape == (config.num_frames, config.height, config.width, 3)
        )
        subject = SyntheticSubject(spec, config.size, config.fps, config.num_frames)
        gt = np.load(out / "gt" / f"{spec.subject_id}.npz")
        for t in (0, config.num_frames - 1):
            image, mask = subject.render(t)
            assert np.array_equal(mask, gt["masks"][t])
            assert cv2.PSNR(image, by_decord[t]) > 28 and cv2.PSNR(image, by_cv2[t]) > 28


def test_workers_do_not_change_the_dataset(tiny_dataset, tiny_dataset_two_workers):
    one, _ = tiny_dataset
    two, _ = tiny_dataset_two_workers
    assert (one / "subjects.csv").read_bytes() == (two / "subjects.csv").read_bytes()
    for row in _rows(one):
        a, b = (
            np.load(one / "gt" / f"{row['subject_id']}.npz"),
            np.load(two / "gt" / f"{row['subject_id']}.npz"),
        )
        assert all(np.array_equal(a[key], b[key]) for key in a.files)
        assert np.array_equal(_decode_cv2(one / row["video"]), _decode_cv2(two / row["video"]))
    assert (one / "mmpose/annotations/train.json").read_bytes() == (
        two / "mmpose/annotations/train.json"
    ).read_bytes()


def test_rerun_resumes_and_rejects_other_arguments(tmp_path):
    config = dataclasses.replace(TINY, subjects=3, prep_subjects=2, prep_frames=1)
    out = tmp_path / "data"
    generate_dataset(out, config, progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "videos").iterdir()}
    lost = out / "videos" / "s0001.mp4"
    original = _decode_cv2(lost)
    lost.unlink()
    generate_dataset(out, config, progress=False)
    assert np.array_equal(_decode_cv2(lost), original)
    for path, stamp in stamps.items():
        if path != lost:
            assert path.stat().st_mtime_ns == stamp  # finished subjects are skipped
    with pytest.raises(ValueError, match=r"other arguments \(fps: 15 -> 10\)"):
        generate_dataset(out, dataclasses.replace(config, fps=10), progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no meta\.json"):
        generate_dataset(tmp_path / "other", config, progress=False)


def test_a_folder_of_an_earlier_version_resumes_only_where_its_output_is_the_same(tmp_path):
    small = dataclasses.replace(TINY, fps=30, seconds=1.0, subjects=1, prep_subjects=0)
    out = tmp_path / "data"
    out.mkdir()

    def made_by_1_0(config):
        arguments = {k: v for k, v in config.arguments().items() if k != "empty_scenes"}
        meta = {"generator_version": "1.0", "arguments": arguments}
        (out / "meta.json").write_text(json.dumps(meta))

    made_by_1_0(small)
    with pytest.raises(ValueError) as caught:
        generate_dataset(out, dataclasses.replace(small, subjects=2), progress=False)
    assert "(subjects: 1 -> 2)" in str(caught.value)  # nothing else differs
    generate_dataset(out, small, progress=False)  # 1.0 infants at 30 fps are 1.1's
    made_by_1_0(dataclasses.replace(small, fps=15))
    with pytest.raises(ValueError, match=r"generator_version: 1\.0 -> 1\.1"):
        generate_dataset(out, dataclasses.replace(small, fps=15), progress=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"width": 63}, "even"),
        ({"confound": 1.5}, r"\[0, 1\]"),
        ({"subjects": 0}, "at least 1"),
        ({"seconds": 0.05}, "longer"),
    ],
)
def test_bad_arguments_name_the_fix(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        generate_dataset(tmp_path / "x", dataclasses.replace(TINY, **change), progress=False)
    assert not (tmp_path / "x").exists()


def test_command_line(tmp_path, capsys):
    from gm_plugins.datasets.synthetic import make_dataset as tool

    help_text = tool.build_parser().format_help()
    for option in (
        "--out",
        "--subjects",
        "--seconds",
        "--fps",
        "--size",
        "--seed",
        "--confound",
        "--workers",
        "--preview",
        "--prep-subjects",
        "--prep-frames",
        "--empty-scenes",
    ):
        assert option in help_text
    assert tool.main(["--out", str(tmp_path / "a"), "--size", "65x48"]) == 2
    assert "even" in capsys.readouterr().err
    args = [
        "--out",
        str(tmp_path / "b"),
        "--subjects",
        "3",
        "--seconds",
        "1",
        "--fps",
        "10",
        "--size",
        "64x48",
        "--prep-subjects",
        "0",
        "--quiet",
        "--preview",
        str(tmp_path / "sheet.png"),
    ]
    assert tool.main(args) == 0
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet.shape[0] > 3 * 48 and sheet.shape[1] > 6 * 64
    assert len(_rows(tmp_path / "b")) == 3


def test_mmseg_layout(tiny_dataset):
    out, config = tiny_dataset
    for split in ("train", "val"):
        images = sorted(p.name for p in (out / "mmseg/img_dir" / split).glob("*.png"))
        annotations = sorted(p.name for p in (out / "mmseg/ann_dir" / split).glob("*.png"))
        assert images and images == annotations
        assert all(name.startswith("p") for name in images)
        label = cv2.imread(
            str(out / "mmseg/ann_dir" / split / annotations[0]), cv2.IMREAD_UNCHANGED
        )
        assert label.shape == (config.height, config.width) and set(np.unique(label)) == {0, 1}
    assert not {p.name[:5] for p in (out / "mmseg/img_dir/train").glob("*")} & {
        p.name[:5] for p in (out / "mmseg/img_dir/val").glob("*")
    }  # splits hold different infants


def test_mmpose_annotations_load_with_pycocotools(tiny_dataset):
    out, config = tiny_dataset
    total = 0
    for split in ("train", "val"):
        coco = COCO(str(out / "mmpose/annotations" / f"{split}.json"))
        assert (
            coco.loadCats(1)[0]["name"] == "person" and len(coco.loadCats(1)[0]["keypoints"]) == 17
        )
        for annotation in coco.loadAnns(coco.getAnnIds()):
            image = coco.loadImgs(annotation["image_id"])[0]
            assert (out / "mmpose/images" / split / image["file_name"]).is_file()
            assert len(annotation["keypoints"]) == 51 and annotation["num_keypoints"] > 0
            x, y, w, h = annotation["bbox"]
            assert x >= 0 and y >= 0 and x + w <= image["width"] and y + h <= image["height"]
            assert 0 < annotation["area"] <= w * h and annotation["iscrowd"] == 0
            mask = cv2.imread(
                str(out / "mmseg/ann_dir" / split / image["file_name"]), cv2.IMREAD_UNCHANGED
            )
            assert annotation["area"] == mask.sum()
        total += len(coco.getImgIds())
    assert total == config.prep_subjects * config.prep_frames


def test_mmpose_coco_dataset_reads_the_annotations(tiny_dataset):
    from mmpose.datasets import CocoDataset

    out, _ = tiny_dataset
    dataset = CocoDataset(
        data_root=str(out / "mmpose"),
        ann_file="annotations/train.json",
        data_prefix=dict(img="images/train/"),
        data_mode="topdown",
        pipeline=[],
        test_mode=False,
    )
    sample = dataset[0]
    assert sample["keypoints"].shape == (1, 17, 2)
    assert os.path.isfile(sample["img_path"])
