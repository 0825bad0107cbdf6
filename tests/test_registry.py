"""Every component gm_plugins registers into MMAction2 builds from a config dict.

A new registered class without an example here fails ``test_every_entry_has_an_example``.
"""

from __future__ import annotations

import copy

import pytest
from mmaction.registry import DATASETS, METRICS, MODELS, TRANSFORMS
from mmengine.config import ConfigDict

from gm_plugins.compat import library_scope
from tests.datasets.fake_cache import write_fake_dataset
from tests.preprocess.transforms import model_configs

REGISTRIES = dict(model=MODELS, dataset=DATASETS, transform=TRANSFORMS, metric=METRICS)

TINY_RESNET = dict(
    type="ResNet", depth=18, num_stages=2, out_indices=(1,), strides=(1, 2), dilations=(1, 1)
)


def model_examples() -> dict[str, dict]:
    recognizer = dict(
        type="MultiStreamRecognizer",
        rgb_backbone=dict(TINY_RESNET, in_channels=3),
        flow_backbone=dict(TINY_RESNET, in_channels=12),
        fusion=dict(type="ConcatConvFusion", in_channels=dict(rgb=128, flow=128)),
        cls_head=dict(type="FusionClsHead", num_classes=3, in_channels=128),
        data_preprocessor=dict(type="TwoStreamDataPreprocessor"),
    )
    return dict(
        TwoStreamDataPreprocessor=dict(type="TwoStreamDataPreprocessor"),
        PoolFusion=dict(type="PoolFusion", in_channels=dict(rgb=8)),
        ConcatConvFusion=dict(type="ConcatConvFusion", in_channels=dict(rgb=8, flow=8)),
        SumFusion=dict(type="SumFusion", in_channels=dict(rgb=8, flow=16), out_channels=8),
        LateFusion=dict(type="LateFusion", in_channels=dict(rgb=8, flow=8), num_classes=3),
        FusionClsHead=dict(type="FusionClsHead", num_classes=3, in_channels=8),
        C3DFeatures=dict(
            type="C3DFeatures", in_channels=3, base_channels=4, norm_cfg=dict(type="BN3d")
        ),
        LSTMFusion=dict(type="LSTMFusion", in_channels=dict(rgb=8), hidden_channels=8),
        MultiStreamRecognizer=recognizer,
    )


def transform_examples(seg: tuple, pose: tuple) -> dict[str, dict]:
    return dict(
        DecodeFrames=dict(type="DecodeFrames", frame_step=5),
        BackgroundRemoval=dict(
            type="BackgroundRemoval", config=str(seg[0]), checkpoint=str(seg[1]), device="cpu"
        ),
        PoseAlignment=dict(
            type="PoseAlignment", config=str(pose[0]), checkpoint=str(pose[1]), device="cpu"
        ),
        LetterboxFrames=dict(type="LetterboxFrames", out_size=32),
        OpticalFlow=dict(type="OpticalFlow"),
        InfantPresenceGate=dict(type="InfantPresenceGate", min_mask_area=0.02),
        LoadCachedWindow=dict(type="LoadCachedWindow", rgb_frames=1),
        LoadCachedKeypoints=dict(
            type="LoadCachedKeypoints", rotate=10.0, scale=0.1, flip_ratio=0.5
        ),
        PackStreamInputs=dict(type="PackStreamInputs", streams=("rgb", "flow")),
    )


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> dict[str, dict[str, dict]]:
    root = tmp_path_factory.mktemp("registry")
    seg_config = model_configs.write_seg_config(root, "unet")
    seg = (seg_config, model_configs.write_checkpoint("mmseg", seg_config, root / "seg.pth"))
    pose_config = model_configs.write_pose_config(root, "heatmap")
    pose = (pose_config, model_configs.write_checkpoint("mmpose", pose_config, root / "pose.pth"))
    data, cache = write_fake_dataset(root)
    dataset = dict(
        type="GMDataset",
        ann_file="subjects.csv",
        data_root=str(data),
        cache_root=str(cache),
        window=dict(start_stride=10, span=8, num_windows=None, frame_step=2),
        pipeline=[dict(type="LoadCachedWindow"), dict(type="PackStreamInputs")],
    )
    return dict(
        model=model_examples(),
        transform=transform_examples(seg, pose),
        dataset=dict(GMDataset=dataset),
        metric=dict(SubjectMetric=dict(type="SubjectMetric", aggregation="vote")),
    )


def gm_plugins_entries() -> list[tuple[str, str]]:
    return sorted(
        (kind, name)
        for kind, registry in REGISTRIES.items()
        for name, cls in registry.module_dict.items()
        if cls.__module__.startswith("gm_plugins")
    )


def test_every_entry_has_an_example(examples):
    entries = gm_plugins_entries()
    assert len(entries) >= 15  # the package registers its components on import
    missing = [(kind, name) for kind, name in entries if name not in examples[kind]]
    assert not missing, f"add a build example for {missing} to tests/test_registry.py"


@pytest.mark.parametrize(("kind", "name"), gm_plugins_entries())
def test_entry_builds_from_config(kind, name, examples):
    cfg = ConfigDict(copy.deepcopy(examples[kind][name]))
    with library_scope("mmaction"):
        built = REGISTRIES[kind].build(cfg)
    assert type(built).__name__ == name
    assert type(built).__module__.startswith("gm_plugins")
