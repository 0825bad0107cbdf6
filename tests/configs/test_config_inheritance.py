"""Configs that inherit what they share: named steps tell the truth, variants change one thing."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from mmengine.config import Config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PREPROCESS = CONFIGS / "preprocess"
DEFAULT_CHAIN = CONFIGS / "_base_/preprocess/default_chain.py"
CHAIN_CONFIGS = [*sorted(PREPROCESS.glob("preprocess_*.py")), DEFAULT_CHAIN]
CLASSIFIER_CONFIGS = sorted(
    path
    for folder in ("gm", "baselines", "confounding", "backbones", "benchmark")
    for path in CONFIGS.glob(f"{folder}/*.py")
)
#: The name under which a chain config keeps each kind of step.
STEP_NAMES = dict(
    DecodeFrames="decode",
    BackgroundRemoval="background_removal",
    PoseAlignment="alignment",
    LetterboxFrames="letterbox",
    OpticalFlow="flow",
    InfantPresenceGate="presence_gate",
)


@cache
def load(path: Path) -> Config:
    return Config.fromfile(str(path))


def chain(name: str) -> list[dict]:
    return [dict(step) for step in load(PREPROCESS / name).preprocess_pipeline]


@pytest.mark.parametrize("path", CHAIN_CONFIGS, ids=lambda path: path.stem)
def test_every_chain_step_is_its_named_step(path):
    # A config that changes a named step but does not restate the list would fail here.
    cfg = load(path)
    assert cfg.preprocess_pipeline
    for step in cfg.preprocess_pipeline:
        assert step == cfg[STEP_NAMES[step["type"]]], step["type"]


def test_the_demo_variants_change_only_what_their_names_say():
    decode, segment, align, flow, gate = chain(
        "preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py"
    )
    assert gate["type"] == "InfantPresenceGate"
    letterbox = dict(type="LetterboxFrames", out_size=align["out_size"])
    expected = {
        "preprocess_unet-seg_res18-pose_farneback-k5-s3.75-64_skeleton_demo.py": [
            decode, segment, dict(align, keyframe_interval=5), flow
        ],
        "preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_no-background-removal_demo.py": [
            decode, dict(segment, mask_mode="none"), align, flow
        ],
        "preprocess_unet-seg_farneback-64_no-alignment_demo.py": [
            decode, segment, letterbox, flow
        ],
        "preprocess_farneback-64_no-background-removal_no-alignment_demo.py": [
            decode, letterbox, flow
        ],
    }  # fmt: skip
    for name, steps in expected.items():
        assert chain(name) == steps, name


def test_the_paper_variant_changes_only_the_keyframe_interval():
    decode, segment, align, flow = chain(
        "preprocess_any-seg_any-pose_farneback-k30-s3.75-224_paper.py"
    )
    skeleton = chain("preprocess_any-seg_any-pose_farneback-k5-s3.75-224_skeleton-gm3.py")
    assert skeleton == [decode, segment, dict(align, keyframe_interval=5), flow]


def test_chains_share_the_papers_settings_unless_their_name_says_otherwise():
    base = {step["type"]: step for step in load(DEFAULT_CHAIN).preprocess_pipeline}
    for path in sorted(PREPROCESS.glob("preprocess_*.py")):
        for step in load(path).preprocess_pipeline:
            shared = base.get(step["type"], {})
            changed = {k for k in shared if step[k] != shared[k]}
            if step["type"] == "PoseAlignment":  # k5 and the output size are in the name
                changed -= {"keyframe_interval"} if "-k5-" in path.name else set()
                assert f"-{step['out_size']}_" in path.name, path.name
                changed -= {"out_size"}
            if step["type"] == "OpticalFlow":  # scaled with the 64 px output of the demo
                changed -= {"bound"} if "-64_" in path.name else set()
            if step["type"] == "BackgroundRemoval":
                changed -= {"mask_mode"} if "no-background-removal" in path.name else set()
            assert not changed, (path.name, step["type"], changed)


@pytest.mark.parametrize("path", CLASSIFIER_CONFIGS, ids=lambda path: path.stem)
def test_the_loaders_run_the_configs_own_pipelines(path):
    # Redefining train_pipeline in a child does not reach the loaders unless they are reassigned.
    cfg = load(path)
    assert cfg.train_dataloader.dataset.pipeline == cfg.train_pipeline
    assert cfg.val_dataloader.dataset.pipeline == cfg.test_pipeline
    assert cfg.test_dataloader.dataset.pipeline == cfg.test_pipeline


@pytest.mark.parametrize(
    "path", [p for p in CLASSIFIER_CONFIGS if "_demo_" in p.name], ids=lambda path: path.stem
)
def test_demo_configs_run_on_a_cpu_machine(path):
    cfg = load(path)
    assert cfg.env_cfg.dist_cfg.backend == "gloo"  # NCCL needs a GPU
    assert cfg.optim_wrapper.type == "OptimWrapper"  # AmpOptimWrapper needs a GPU
    assert cfg.default_hooks.logger.interval == 10
