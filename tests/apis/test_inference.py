"""Classifying new videos: bundles, GMInferencer, abstention, tools/infer.py, and parity with
tools/test.py on the cached versions of the same videos (tiny models, random weights)."""

from __future__ import annotations

import csv
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from gm_plugins.apis.inference import GMInferencer, init_gm_model
from gm_plugins.deploy.bundle import Abstention, BundleError, export_bundle, load_bundle
from tests.preprocess.transforms import model_configs
from tests.runner_configs import DEMO_CONFIG
from tests.tools.test_train_test import run_tool

pytestmark = pytest.mark.slow

SUBJECTS = {"a01": "WMs", "b02": "FMs", "c03": "PR"}
SECONDS = 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """Three 3 s videos, a chain of tiny random models, a classifier config and checkpoint."""
    root = tmp_path_factory.mktemp("inference")
    models = {}
    for name, library in (("unet", "mmseg"), ("heatmap", "mmpose")):
        write = (
            model_configs.write_seg_config
            if library == "mmseg"
            else model_configs.write_pose_config
        )
        config = write(root, name)
        models[name] = (
            config,
            model_configs.write_checkpoint(library, config, root / f"{name}.pth"),
        )
    chain = model_configs.write_pipeline_config(root / "chain.py", models)
    data = root / "data"
    for index, subject in enumerate(SUBJECTS):
        frames = model_configs.textured_frames(30 * SECONDS, seed=index)
        model_configs.write_video(data / "videos" / f"{subject}.mp4", frames)
    rows = "".join(f"{s},{label},videos/{s}.mp4\n" for s, label in SUBJECTS.items())
    (data / "subjects.csv").write_text("subject_id,label,video\n" + rows)
    cache = data / "cache"
    window = dict(start_stride=1.0, span=0.6, num_windows=None, unit="seconds")  # 6 flows
    loader = "dict(batch_size=4, num_workers=0, persistent_workers=False, dataset=dataset)"
    dataset = dict(
        data_root=str(data),
        cache_root=str(cache),
        window=window,
        split="all",
        exclude_fallbacks=False,  # random models: every alignment falls back
    )
    classifier = root / "classifier.py"
    classifier.write_text(
        f"_base_ = [{str(DEMO_CONFIG)!r}]\n"
        f"preprocess_config = {str(chain)!r}\n"
        f"dataset = {dataset!r}\n"
        f"train_dataloader = {loader}\nval_dataloader = {loader}\ntest_dataloader = {loader}\n"
    )
    from mmaction.apis import init_recognizer
    from mmengine.runner import save_checkpoint

    from gm_plugins.compat import library_scope

    torch.manual_seed(0)
    with library_scope("mmaction"):
        model = init_recognizer(str(classifier), None, device="cpu")
    checkpoint = root / "classifier.pth"
    save_checkpoint({"state_dict": model.state_dict(), "meta": {}}, str(checkpoint))
    bundle = export_bundle(classifier, checkpoint, root / "bundle", zip_path=root / "bundle.zip")
    return dict(root=root, data=data, cache=cache, chain=chain, classifier=classifier,
                checkpoint=checkpoint, bundle=bundle)  # fmt: skip


@pytest.fixture(scope="module")
def inferencer(setup) -> GMInferencer:
    return GMInferencer(setup["bundle"], keep_images=True)


def test_bundle_holds_everything_and_refuses_tampering(setup, tmp_path):
    bundle = load_bundle(setup["bundle"])
    files = set(bundle.manifest["files"])
    assert {"classifier.py", "classifier.pth", "preprocess.py"} <= files
    assert {"models/segmentation.py", "models/segmentation.pth", "models/pose.py",
            "models/pose.pth"} <= files  # fmt: skip
    assert bundle.class_names == ("WMs", "FMs", "PR")
    assert bundle.window["span"] == 0.6 and bundle.aggregation == "mean"
    assert bundle.manifest["versions"]["mmaction2"] and bundle.manifest["versions"]["torch"]
    steps = {step["type"]: step for step in bundle.preprocess_pipeline}
    assert Path(steps["BackgroundRemoval"]["checkpoint"]).parent == bundle.root / "models"
    # a copy with one changed byte, and one with a missing file, are refused by name
    import shutil

    tampered = shutil.copytree(setup["bundle"], tmp_path / "tampered")
    weights = bytearray((tampered / "models" / "pose.pth").read_bytes())
    weights[-10] ^= 0xFF
    (tampered / "models" / "pose.pth").write_bytes(bytes(weights))
    with pytest.raises(BundleError, match=r"models/pose.pth: sha256 differs"):
        load_bundle(tampered)
    incomplete = shutil.copytree(setup["bundle"], tmp_path / "incomplete")
    (incomplete / "classifier.pth").unlink()
    with pytest.raises(BundleError, match=r"classifier.pth: missing"):
        load_bundle(incomplete)
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        load_bundle(tmp_path)
    # an existing bundle is replaced only when asked
    with pytest.raises(FileExistsError, match="overwrite"):
        export_bundle(setup["classifier"], setup["checkpoint"], setup["bundle"])


def test_a_config_without_its_chain_or_checkpoint_is_refused(setup, tmp_path):
    from gm_plugins.utils.config import ConfigError

    bare = tmp_path / "bare.py"
    bare.write_text(f"_base_ = [{str(DEMO_CONFIG)!r}]\npreprocess_config = None\n")
    with pytest.raises(ConfigError, match="preprocess_config"):
        export_bundle(bare, setup["checkpoint"], tmp_path / "b")
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.*"))
    with pytest.raises(ValueError, match="random weights"):
        init_gm_model(setup["classifier"])


def test_inferencer_matches_tools_test_on_the_cached_videos(setup, inferencer):
    from gm_plugins.preprocess.jobs import preprocess_dataset

    preprocess_dataset(setup["chain"], setup["data"], setup["cache"], progress=False)
    dump = setup["root"] / "predictions.pkl"
    tested = run_tool("tools/test.py", str(setup["classifier"]), str(setup["checkpoint"]),
                      "--work-dir", str(setup["root"] / "test"), "--dump", str(dump))  # fmt: skip
    assert tested.returncode == 0, tested.stderr[-3000:]
    expected: dict[tuple[str, int], np.ndarray] = {}
    for sample in pickle.loads(dump.read_bytes()):
        scores = np.asarray(sample["pred_score"], np.float64)
        expected[(sample["subject_id"], int(sample["window_index"]))] = scores
    results = inferencer([setup["data"] / "videos" / f"{s}.mp4" for s in SUBJECTS])
    compared = 0
    for result in results:
        assert result["status"] == "ok", result.get("error")
        assert len(result["windows"]) == 3  # at 0, 1 and 2 s; a fourth would end past 3 s
        for window in result["windows"]:
            got = np.array([window["probabilities"][c] for c in result["class_names"]])
            np.testing.assert_allclose(got, expected[(result["name"], window["index"])], atol=1e-4)
            compared += 1
        assert result["windows"][1]["start_s"] == pytest.approx(1.0)
        assert result["windows"][0]["end_s"] == pytest.approx(0.6)
    assert compared == len(expected) == 9
    # the in-memory entry is the cache entry: same frames, quantised flow, matrices and meta
    from gm_plugins.datasets.cache import read_cached_video

    entry = inferencer.preprocess(setup["data"] / "videos" / "b02.mp4")
    cached = read_cached_video(setup["cache"], "b02")
    assert np.array_equal(entry.frames, cached.frames) and np.array_equal(entry.flow, cached.flow)
    np.testing.assert_array_equal(entry.matrices, np.load(cached.path / "matrices.npy"))
    np.testing.assert_array_equal(entry.keypoints[0], cached.keypoints[0])
    skip = ("video", "subject_id", "label", "environment")  # what subjects.csv adds
    assert {k: v for k, v in entry.meta.items() if k not in skip} == {
        k: v for k, v in cached.meta.items() if k not in skip
    }


def test_result_has_decision_probabilities_quality_and_images(setup, inferencer):
    result = inferencer(setup["data"] / "videos" / "a01.mp4")[0]
    probabilities = result["class_probabilities"]
    assert set(probabilities) == {"WMs", "FMs", "PR"}
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    windows = np.array([[w["probabilities"][c] for c in result["class_names"]]
                        for w in result["windows"]])  # fmt: skip
    np.testing.assert_allclose(windows.mean(0), list(probabilities.values()), atol=1e-5)
    assert result["predicted_class"] == max(probabilities, key=probabilities.get)
    assert result["confidence"] == pytest.approx(max(probabilities.values()))
    quality = result["quality"]
    assert quality["fps"] == 30.0 and quality["duration_s"] == pytest.approx(SECONDS)
    assert quality["sample_fps"] == 10.0 and quality["sampled_frames"] == 30
    assert quality["mask_area_median"] is not None and "fallback" in quality
    assert set(result["images"]) == {"original", "mask", "background_removed", "aligned", "flow"}
    assert result["images"]["original"].shape == (48, 64, 3)
    assert result["images"]["aligned"].shape == (144, 144, 3)  # 24 px shown 6x
    assert result["bundle"]["manifest_sha256"] and result["bundle"]["name"] == "classifier"
    json.dumps({k: v for k, v in result.items() if k != "images"})  # JSON-ready


def test_abstains_below_the_threshold_or_on_short_videos_and_says_why(setup, tmp_path):
    model = init_gm_model(setup["bundle"], abstention=Abstention(min_probability=0.99))
    result = GMInferencer(model)(setup["data"] / "videos" / "b02.mp4")[0]
    assert result["decision"] == "uncertain" and result["abstained"]
    assert result["predicted_class"] in ("WMs", "FMs", "PR")
    assert any("below the bundle's threshold 0.99" in r for r in result["abstain_reasons"])
    short = model_configs.write_video(tmp_path / "short.mp4", model_configs.textured_frames(12))
    strict = init_gm_model(setup["bundle"], abstention=Abstention(min_probability=0.0))
    result = GMInferencer(strict)(short)[0]
    assert result["status"] == "ok" and result["decision"] == "uncertain"
    assert result["windows"] == [] and result["class_probabilities"] is None
    assert any("too short" in reason for reason in result["abstain_reasons"])


def test_infer_tool_writes_reports_and_reports_a_bad_video(setup, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for subject in ("a01", "c03"):
        (videos / f"{subject}.mp4").write_bytes(
            (setup["data"] / "videos" / f"{subject}.mp4").read_bytes()
        )
    (videos / "broken.mp4").write_bytes(b"not a video at all")
    out = tmp_path / "out"
    run = run_tool("tools/infer.py", str(videos), "--bundle", str(setup["root"] / "bundle.zip"),
                   "--out", str(out))  # fmt: skip
    assert run.returncode == 1, run.stderr[-3000:]  # one video failed
    assert "1 of 3 video(s) failed" in run.stderr
    with open(out / "summary.csv") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"a01", "broken", "c03"}
    assert rows["broken"]["status"] == "failed" and "broken.mp4" in rows["broken"]["error"]
    assert rows["a01"]["status"] == "ok" and float(rows["a01"]["confidence"]) > 0
    for subject in ("a01", "c03"):
        result = json.loads((out / subject / "result.json").read_text())
        assert result["decision"] == rows[subject]["decision"]
        assert "<img" in (out / subject / "report.html").read_text()
    assert "broken" in (out / "index.html").read_text()
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporaries left
    with zipfile.ZipFile(setup["root"] / "bundle.zip") as archive:
        assert "manifest.json" in archive.namelist()


def test_onnxruntime_segmentation_gives_the_pytorch_decision(
    setup, inferencer, tmp_path, monkeypatch
):
    monkeypatch.setenv("GM_PLUGINS_ONNX_CACHE", str(tmp_path / "onnx"))
    model = init_gm_model(setup["bundle"], segmentation_backend="onnxruntime")
    steps = {step["type"]: step for step in model.preprocess_pipeline}
    assert steps["BackgroundRemoval"]["backend"] == "onnxruntime"
    # the bundle's own chain is left as it was
    assert (
        "backend"
        not in {s["type"]: s for s in load_bundle(setup["bundle"]).preprocess_pipeline}[
            "BackgroundRemoval"
        ]
    )
    video = setup["data"] / "videos" / "c03.mp4"
    ours = GMInferencer(model)(video)[0]
    theirs = inferencer(video)[0]
    assert ours["decision"] == theirs["decision"]
    for mine, reference in zip(ours["windows"], theirs["windows"], strict=True):
        for name, probability in reference["probabilities"].items():
            assert mine["probabilities"][name] == pytest.approx(probability, abs=1e-4)
    assert list((tmp_path / "onnx").glob("segmentation-*.onnx"))
    with pytest.raises(ValueError, match="choose one of"):
        init_gm_model(setup["bundle"], segmentation_backend="tensorrt")


@pytest.fixture(scope="module")
def fitted_bundle(setup, tmp_path_factory):
    """The classifier exported with a validation record: T = 2, agreement >= 0.9, and a domain
    of validation infants whose pose evidence was plausible on every keyframe."""
    from gm_plugins.deploy.validation import ValidationInfant, fit_validation

    rng = np.random.default_rng(0)
    infants = []
    for index in range(12):
        label = index % 3
        windows = np.full((5, 3), 0.05)
        windows[:, label] = 0.9
        figures = dict(
            plausible_skeleton_fraction=1.0,
            keypoint_score_median=float(rng.uniform(0.7, 0.9)),
        )
        infants.append(ValidationInfant(f"v{index}", label, windows, figures))
    validation = fit_validation(infants, calibrate=False)
    validation["calibration"]["temperature"] = 2.0
    validation["agreement"]["min_window_agreement"] = 0.9
    folder = tmp_path_factory.mktemp("fitted") / "bundle"
    return export_bundle(setup["classifier"], setup["checkpoint"], folder, validation=validation)


def test_a_fitted_bundle_keeps_its_validation_record_and_diagram(fitted_bundle):
    bundle = load_bundle(fitted_bundle)
    assert bundle.temperature == 2.0 and bundle.validation["infants"] == 12
    assert "validation/reliability.png" in bundle.manifest["files"]
    assert (fitted_bundle / "validation" / "reliability.png").stat().st_size > 1000
    manifest = json.loads((fitted_bundle / "manifest.json").read_text())
    manifest["validation"]["format"] = "another/9"
    (fitted_bundle.parent / "other").mkdir()
    for path in fitted_bundle.rglob("*"):
        if path.is_file():
            target = fitted_bundle.parent / "other" / path.relative_to(fitted_bundle)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    (fitted_bundle.parent / "other" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="validation record of format 'another/9'"):
        load_bundle(fitted_bundle.parent / "other")


def test_implausible_pose_evidence_is_outside_the_domain_and_abstains(setup, fitted_bundle):
    result = GMInferencer(fitted_bundle)(setup["data"] / "videos" / "b02.mp4")[0]
    assert result["quality"]["plausible_skeleton_fraction"] < 0.99  # random pose weights
    assert result["decision"] == "uncertain"
    assert any(
        r.startswith("outside the model's training domain: ")
        and "plausible_skeleton_fraction=" in r
        for r in result["abstain_reasons"]
    )
    reliability = result["reliability"]
    assert reliability["temperature"] == 2.0 and 0 <= reliability["window_agreement"] <= 1
    raw = np.array(list(reliability["uncalibrated_probabilities"].values()))
    calibrated = np.array(list(result["class_probabilities"].values()))
    assert raw.max() >= calibrated.max() - 1e-9  # T = 2 flattens the scores


def test_windows_that_flip_abstain(setup, fitted_bundle, monkeypatch):
    model = init_gm_model(fitted_bundle, abstention=Abstention(outside_domain=False))
    inferencer = GMInferencer(model)
    flipping = np.array([[0.98, 0.01, 0.01], [0.01, 0.98, 0.01]] * 3)
    windows = [dict(index=i, start_s=float(i), end_s=i + 0.6) for i in range(6)]
    monkeypatch.setattr(inferencer, "window_probabilities", lambda entry: (flipping, windows))
    result = inferencer(setup["data"] / "videos" / "a01.mp4")[0]
    assert result["reliability"]["window_agreement"] == pytest.approx(0.5)
    assert result["reliability"]["mutual_information"] > 0.3
    assert result["decision"] == "uncertain"
    assert any("the windows disagree: 50% of them" in r for r in result["abstain_reasons"])
    steady = np.array([[0.98, 0.01, 0.01]] * 6)
    monkeypatch.setattr(inferencer, "window_probabilities", lambda entry: (steady, windows))
    result = inferencer(setup["data"] / "videos" / "a01.mp4")[0]
    assert result["reliability"]["window_agreement"] == 1.0
    assert not any("disagree" in r for r in result["abstain_reasons"])


def test_a_still_video_is_not_assessable(setup, tmp_path):
    still = model_configs.write_video(
        tmp_path / "still.mp4", model_configs.textured_frames(1) * 30 * SECONDS
    )
    model = init_gm_model(setup["bundle"], abstention=Abstention(min_probability=0.0))
    inferencer = GMInferencer(model)
    entry = inferencer.preprocess(still)  # what offline preprocessing caches, in memory
    assert entry.meta["quality"]["fallback"] == "no_movement"
    result = inferencer(still)[0]
    assert result["decision"] == "uncertain" and result["quality"]["fallback"] == "no_movement"
    assert any("preprocessing fell back: no_movement" in r for r in result["abstain_reasons"])
    assert any(w.startswith("no movement, not assessable") for w in result["warnings"])
