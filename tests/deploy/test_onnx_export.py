"""ONNX export: ONNX Runtime gives PyTorch's outputs (within 1e-4) for the classifier, the
segmentation and the pose network on random inputs of batch 1 and 3, the sidecar describes the
model, and the ONNX Runtime classifier backend scores packed batches as the recognizer does."""

from __future__ import annotations

import json
import re

import numpy as np
import onnxruntime as ort
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import save_checkpoint

from gm_plugins.apis.onnx_backend import OnnxClassifier, with_onnx_classifier
from gm_plugins.deploy import onnx_export
from gm_plugins.deploy.bundle import sha256_of
from gm_plugins.preprocess import model_runners as openmmlab_models
from gm_plugins.runtime.onnx import OPSET, OnnxExportError, OnnxModelError, ParityError
from gm_plugins.utils.config import ConfigError
from tests.models.tiny_models import TINY_RESNET, raw_batch, recognizer_config
from tests.preprocess.transforms import model_configs

TOLERANCE = 1e-4
SHAPES = dict(rgb=(1, 3, 32, 32), flow=(3, 2, 32, 32))


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one intra-op thread is fastest on a busy 2-core machine."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def write_classifier(directory, fusion: dict | None = None) -> tuple:
    """A tiny two-stream classifier config file and a checkpoint of its random weights."""
    fusion = fusion or dict(type="ConcatConvFusion", out_channels=128)
    model = recognizer_config(
        rgb_backbone=TINY_RESNET, flow_backbone=TINY_RESNET, fusion=fusion, input_shapes=SHAPES
    ).to_dict()
    model["data_preprocessor"] = dict(type="TwoStreamDataPreprocessor", flow_std=[0.5, 0.25])
    config = directory / "classifier.py"
    Config(dict(default_scope="mmaction", model=model)).dump(str(config))
    torch.manual_seed(0)
    recognizer = onnx_export.load_classifier(config)
    checkpoint = directory / "classifier.pth"
    save_checkpoint({"state_dict": recognizer.state_dict(), "meta": {}}, str(checkpoint))
    return config, checkpoint


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> dict:
    directory = tmp_path_factory.mktemp("onnx_classifier")
    config, checkpoint = write_classifier(directory)
    result = onnx_export.export_classifier(
        config, directory / "out" / "classifier.onnx", checkpoint=checkpoint
    )
    recognizer = onnx_export.load_classifier(config, checkpoint)
    return dict(config=config, checkpoint=checkpoint, result=result, recognizer=recognizer)


@pytest.fixture(scope="module")
def library_models(tmp_path_factory) -> dict:
    directory = tmp_path_factory.mktemp("onnx_library_models")
    return dict(
        seg=model_configs.write_seg_config(directory, "unet"),
        pose=model_configs.write_pose_config(directory, "heatmap"),
        out=directory / "out",
    )


def random(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_classifier_matches_pytorch_at_batch_1_and_3(classifier):
    result = classifier["result"]
    assert result.onnx_path.is_file() and result.max_abs_diff < TOLERANCE
    recognizer = classifier["recognizer"]  # the same checkpoint, loaded again
    session = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["rgb", "flow"]
    assert [o.name for o in session.get_outputs()] == ["logits", "probs"]
    for batch in (1, 3):
        rgb, flow = random((batch, *SHAPES["rgb"]), batch), random((batch, *SHAPES["flow"]), 7)
        logits, probs = session.run(None, {"rgb": rgb.numpy(), "flow": flow.numpy()})
        with torch.no_grad():
            expected, _ = recognizer.extract_feat(dict(rgb=rgb, flow=flow), stage="head")
        assert logits.shape == (batch, 3)
        assert np.abs(logits - expected.numpy()).max() < TOLERANCE
        assert np.abs(probs - expected.softmax(-1).numpy()).max() < TOLERANCE
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    # random weights of another seed give other scores: the comparison can fail
    torch.manual_seed(1)
    other = onnx_export.load_classifier(classifier["config"])
    with torch.no_grad():
        differs, _ = other.extract_feat(dict(rgb=rgb, flow=flow), stage="head")
    assert np.abs(logits - differs.numpy()).max() > 10 * TOLERANCE


def test_classifier_sidecar_describes_inputs_normalisation_and_sources(classifier):
    result = classifier["result"]
    sidecar = json.loads(result.sidecar_path.read_text())
    assert sidecar == result.sidecar
    assert result.sidecar_path.name == "classifier.json"
    assert sidecar["kind"] == "classifier" and sidecar["opset"] == OPSET
    assert sidecar["inputs"] == [
        dict(name="rgb", shape=["batch", 1, 3, 32, 32], dtype="float32"),
        dict(name="flow", shape=["batch", 3, 2, 32, 32], dtype="float32"),
    ]
    assert [o["shape"] for o in sidecar["outputs"]] == [["batch", 3], ["batch", 3]]
    assert sidecar["normalisation"] == dict(
        rgb=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
        flow=dict(mean=[0.0, 0.0], std=[0.5, 0.25]),
    )
    assert sidecar["pred_score"] == "probs"  # the tiny head averages probabilities
    source = sidecar["source"]
    assert source["config_sha256"] == sha256_of(classifier["config"])
    assert source["checkpoint_sha256"] == sha256_of(classifier["checkpoint"])
    assert sidecar["onnx_sha256"] == sha256_of(result.onnx_path)
    assert sidecar["parity"]["max_abs_diff"] == result.max_abs_diff
    assert [feed["rgb"][0] for feed in sidecar["parity"]["inputs"]] == [1, 3]
    leftovers = [p.name for p in result.onnx_path.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_backend_scores_packed_batches_like_the_recognizer(classifier):
    backend = OnnxClassifier(classifier["result"].onnx_path, num_threads=1)
    assert backend.streams == ("rgb", "flow") and backend.num_classes == 3
    batch = raw_batch(batch_size=3, frames=1, flow_fields=3, size=32)
    with torch.no_grad():
        expected = classifier["recognizer"].test_step(batch)
    got = backend.test_step(raw_batch(batch_size=3, frames=1, flow_fields=3, size=32))
    for reference, sample in zip(expected, got, strict=True):
        assert torch.abs(sample.pred_score - reference.pred_score).max() < TOLERANCE
        assert sample.pred_label.item() == reference.pred_label.item()
        assert sample.metainfo["subject_id"] == reference.metainfo["subject_id"]
    with pytest.raises(ValueError, match=r"exported for \(N, 3, 2, 32, 32\)"):
        backend(rgb=np.zeros((1, 1, 3, 32, 32)), flow=np.zeros((1, 3, 2, 16, 16)))
    with pytest.raises(ValueError, match="takes the streams"):
        backend(rgb=np.zeros((1, 1, 3, 32, 32)))


def test_backend_replaces_the_recognizer_of_a_gm_model(classifier):
    from gm_plugins.apis.inference import GMModel
    from gm_plugins.datasets.windows import WindowSpec

    model = GMModel(
        recognizer=classifier["recognizer"],
        cfg=Config(),
        preprocess_pipeline=[],
        class_names=("WMs", "FMs", "PR"),
        window=WindowSpec(start_stride=1.0, span=1.0),
    )
    swapped = with_onnx_classifier(model, classifier["result"].onnx_path)
    assert isinstance(swapped.recognizer, OnnxClassifier)
    assert model.recognizer is classifier["recognizer"]  # the original is unchanged
    two_classes = GMModel(**{**vars(model), "class_names": ("a", "b")})
    with pytest.raises(OnnxModelError, match="scores 3 classes but the model has 2"):
        with_onnx_classifier(two_classes, classifier["result"].onnx_path)


def test_backend_refuses_a_changed_file_or_another_kind(classifier, tmp_path):
    source = classifier["result"].onnx_path
    copy = tmp_path / "classifier.onnx"
    copy.write_bytes(source.read_bytes() + b"\0")
    (tmp_path / "classifier.json").write_text(classifier["result"].sidecar_path.read_text())
    with pytest.raises(OnnxModelError, match="sha256 mismatch"):
        OnnxClassifier(copy)
    (tmp_path / "classifier.json").unlink()
    with pytest.raises(OnnxModelError, match="has no sidecar"):
        OnnxClassifier(copy)
    sidecar = dict(classifier["result"].sidecar, kind="pose")
    (tmp_path / "pose.json").write_text(json.dumps(sidecar))
    (tmp_path / "pose.onnx").write_bytes(source.read_bytes())
    with pytest.raises(OnnxModelError, match="holds a pose model, not a classifier"):
        OnnxClassifier(tmp_path / "pose.onnx")


def test_a_parity_failure_raises_and_keeps_no_file(classifier, tmp_path):
    target = tmp_path / "classifier.onnx"
    with pytest.raises(ParityError, match="differ by up to"):
        onnx_export.export_classifier(
            classifier["config"], target, checkpoint=classifier["checkpoint"], tolerance=-1.0
        )
    assert list(tmp_path.iterdir()) == []


def test_a_classifier_without_input_shapes_needs_a_window_size(classifier, tmp_path):
    cfg = Config.fromfile(str(classifier["config"]))
    cfg.model.pop("input_shapes")
    cfg.model.flow_backbone.in_channels = 6  # without input_shapes nothing is fitted
    cfg.model.fusion.in_channels = dict(rgb=128, flow=128)
    with pytest.raises(OnnxExportError, match="--size H"):
        onnx_export.export_classifier(cfg, tmp_path / "c.onnx")
    result = onnx_export.export_classifier(
        cfg, tmp_path / "c.onnx", input_shapes=dict(rgb=(1, 3, 16, 16), flow=(3, 2, 16, 16))
    )
    assert result.sidecar["input_shapes"] == dict(rgb=[1, 3, 16, 16], flow=[3, 2, 16, 16])
    assert result.sidecar["source"]["config"] is None  # a Config object has no file


def test_segmentation_matches_mmseg_whole_inference(library_models):
    height, width = 48, 64
    result = onnx_export.export_segmentation(
        library_models["seg"],
        library_models["out"] / "segmentation.onnx",
        input_size=(height, width),
    )
    assert result.max_abs_diff < TOLERANCE
    sidecar = result.sidecar
    assert sidecar["inputs"][0] == dict(name="image", shape=["batch", 3, 48, 64], dtype="float32")
    assert sidecar["outputs"][0]["shape"] == ["batch", 2, 48, 64]
    assert sidecar["normalisation"]["channel_order"] == "rgb"
    assert sidecar["source"]["checkpoint"] is None
    model = openmmlab_models.load_model("mmseg", library_models["seg"])  # the exported one
    session = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        image = random((batch, 3, height, width), batch)
        (logits,) = session.run(None, {"image": image.numpy()})
        metas = [dict(img_shape=(height, width), pad_shape=(height, width))] * batch
        with torch.no_grad():
            expected = model.encode_decode(image, metas)  # mmseg's own 'whole' inference
        assert logits.shape == (batch, 2, height, width)
        assert np.abs(logits - expected.numpy()).max() < TOLERANCE


def test_segmentation_input_size_comes_from_the_config(library_models):
    model = openmmlab_models.load_model("mmseg", library_models["seg"])
    # tests' UNet: the preprocessor pads to a fixed size=(64, 64)
    assert onnx_export.segmentation_input_size(model) == (64, 64)


def test_pose_matches_mmpose_tensor_mode(library_models):
    result = onnx_export.export_pose(library_models["pose"], library_models["out"] / "pose.onnx")
    assert result.max_abs_diff < TOLERANCE
    assert result.sidecar["input_size"] == [64, 64]
    assert result.sidecar["outputs"][0] == dict(
        name="heatmaps", shape=["batch", 17, 16, 16], dtype="float32"
    )
    model = openmmlab_models.load_model("mmpose", library_models["pose"])
    session = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        crop = random((batch, 3, 64, 64), batch)
        (heatmaps,) = session.run(None, {"crop": crop.numpy()})
        with torch.no_grad():
            expected = model(crop, None, mode="tensor")
        assert heatmaps.shape == (batch, 17, 16, 16)
        assert np.abs(heatmaps - expected.numpy()).max() < TOLERANCE


def test_wrong_kind_of_config_and_missing_files_are_named(library_models, classifier, tmp_path):
    with pytest.raises(ConfigError, match=r"export it with `tools/deployment/export_onnx\.py seg`"):
        onnx_export.export_classifier(library_models["seg"], tmp_path / "c.onnx")
    with pytest.raises(ConfigError, match=r"tools/deployment/export_onnx\.py recognizer"):
        onnx_export.export_pose(classifier["config"], tmp_path / "p.onnx")
    missing = tmp_path / "nothing.pth"
    with pytest.raises(
        FileNotFoundError, match=re.escape(f"pose checkpoint {missing} does not exist")
    ):
        onnx_export.export_pose(library_models["pose"], tmp_path / "p.onnx", checkpoint=missing)
    with pytest.raises(FileNotFoundError, match=r"classifier checkpoint .*nothing\.pth"):
        onnx_export.export_classifier(classifier["config"], tmp_path / "c.onnx", missing)
    assert not any(tmp_path.iterdir())
