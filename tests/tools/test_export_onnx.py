"""tools/deployment/export_onnx.py end to end on tiny configs: recognizer, seg, pose and bundle
exports write checked ONNX files with sidecars, the benchmark reports both runtimes, and a missing
checkpoint or a config of the wrong kind gives a one-line error naming the file and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from gm_plugins.deploy.bundle import export_bundle
from tests.deploy.test_onnx_export import write_classifier
from tests.preprocess.transforms import model_configs
from tests.tools.test_train_test import run_tool
from tools.deployment import export_onnx

TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """A tiny classifier (config + checkpoint), UNet and heatmap pose models (with weights)."""
    root = tmp_path_factory.mktemp("export_onnx_tool")
    config, checkpoint = write_classifier(root)
    seg = model_configs.write_seg_config(root, "unet")
    pose = model_configs.write_pose_config(root, "heatmap")
    return dict(
        root=root,
        classifier=(config, checkpoint),
        seg=(seg, model_configs.write_checkpoint("mmseg", seg, root / "unet.pth")),
        pose=(pose, model_configs.write_checkpoint("mmpose", pose, root / "heatmap.pth")),
    )


def sidecar(path: Path) -> dict:
    return json.loads(path.read_text())


def test_recognizer_seg_and_pose_commands_write_checked_models(files, tmp_path, capsys):
    config, checkpoint = files["classifier"]
    out = tmp_path / "onnx"
    assert (
        export_onnx.main(
            ["recognizer", str(config), "--checkpoint", str(checkpoint), "--out", str(out)]
        )
        == 0
    )
    seg_config, seg_checkpoint = files["seg"]
    assert (
        export_onnx.main(
            [
                "seg",
                str(seg_config),
                "--checkpoint",
                str(seg_checkpoint),
                "--input-size",
                "48",
                "64",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    pose_config, pose_checkpoint = files["pose"]
    assert (
        export_onnx.main(
            [
                "pose",
                str(pose_config),
                "--checkpoint",
                str(pose_checkpoint),
                "--out",
                str(out),
                "--name",
                "keypoints",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "classifier.json",
        "classifier.onnx",
        "keypoints.json",
        "keypoints.onnx",
        "segmentation.json",
        "segmentation.onnx",
    ]
    for name, kind in (
        ("classifier", "classifier"),
        ("segmentation", "segmentation"),
        ("keypoints", "pose"),
    ):
        content = sidecar(out / f"{name}.json")
        assert content["kind"] == kind
        assert content["parity"]["max_abs_diff"] < TOLERANCE
        assert content["source"]["weights"] == "checkpoint"
        assert f"{name}: {out / name}.onnx" in printed
    assert sidecar(out / "segmentation.json")["input_size"] == [48, 64]
    assert sidecar(out / "classifier.json")["source"]["checkpoint"] == str(checkpoint)


def test_window_size_options_set_the_classifier_input(files, tmp_path):
    config, _ = files["classifier"]
    out = tmp_path / "onnx"
    args = ["recognizer", str(config), "--size", "16", "--flow-fields", "3", "--out", str(out)]
    assert export_onnx.main(args) == 0
    content = sidecar(out / "classifier.json")
    assert content["input_shapes"] == dict(rgb=[1, 3, 16, 16], flow=[3, 2, 16, 16])
    assert content["source"]["weights"] == "random (no checkpoint)"
    with pytest.raises(SystemExit, match="need --size"):
        export_onnx.main(["recognizer", str(config), "--frames", "2", "--out", str(out)])


def test_bundle_command_exports_all_three_models(files, tmp_path, capsys):
    config, checkpoint = files["classifier"]
    models = {"unet": files["seg"], "heatmap": files["pose"]}
    chain = model_configs.write_pipeline_config(tmp_path / "chain.py", models)
    cfg = Config.fromfile(str(config))
    cfg.preprocess_config = str(chain)
    window = dict(start_stride=1.0, span=0.3, num_windows=None, unit="seconds")
    cfg.test_dataloader = dict(dataset=dict(window=window))
    cfg.dump(str(tmp_path / "bundled.py"))
    bundle = export_bundle(tmp_path / "bundled.py", checkpoint, tmp_path / "bundle")
    out = tmp_path / "onnx"
    assert export_onnx.main(["bundle", str(bundle), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("classifier", "segmentation", "pose"):
        content = sidecar(out / f"{name}.json")
        assert content["parity"]["max_abs_diff"] < TOLERANCE
        assert content["source"]["checkpoint"] == str(
            bundle / ("classifier.pth" if name == "classifier" else f"models/{name}.pth")
        )
        assert f"{name}: " in printed
    assert sidecar(out / "classifier.json")["class_names"] == ["WMs", "FMs", "PR"]
    # the test configs' UNet pads to 64 x 64
    assert sidecar(out / "segmentation.json")["input_size"] == [64, 64]


def test_benchmark_command_reports_both_runtimes(files, capsys):
    config, _ = files["classifier"]
    args = ["benchmark", str(config), "--batch", "2", "--iters", "1", "--warmup", "0"]
    assert export_onnx.main(args) == 0
    printed = capsys.readouterr().out
    assert "PyTorch" in printed and "ONNX Runtime" in printed and "windows/s" in printed
    assert "load average" in printed


def test_missing_checkpoint_gives_an_error_naming_the_file_and_the_fix(files, tmp_path):
    config, _ = files["classifier"]
    missing = tmp_path / "epoch_99.pth"
    result = run_tool(
        "tools/deployment/export_onnx.py",
        "recognizer",
        str(config),
        "--checkpoint",
        str(missing),
        "--out",
        str(tmp_path / "onnx"),
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"classifier checkpoint {missing} does not exist" in result.stderr
    assert "tools/train.py" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "onnx").exists()


def test_a_config_of_another_kind_or_missing_file_is_refused(files, tmp_path, capsys):
    seg_config, _ = files["seg"]
    out = str(tmp_path / "onnx")
    assert export_onnx.main(["recognizer", str(seg_config), "--out", out]) == 2
    assert "not a classifier config: export it with `tools/deployment/export_onnx.py seg`" in (
        capsys.readouterr().err
    )
    pose_config, _ = files["pose"]
    missing = tmp_path / "pose.pth"
    assert (
        export_onnx.main(["pose", str(pose_config), "--checkpoint", str(missing), "--out", out])
        == 2
    )
    error = capsys.readouterr().err
    assert f"pose checkpoint {missing} does not exist" in error and "tools/train.py" in error
    assert export_onnx.main(["seg", str(tmp_path / "nothing.py"), "--out", out]) == 2
    assert "nothing.py does not exist" in capsys.readouterr().err
