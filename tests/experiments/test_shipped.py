"""The shipped experiments name configs and caches that exist and agree with each other."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config

from gm_plugins.experiments import shipped as experiments
from gm_plugins.experiments.shipped import experiment_models

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(experiments.EXPERIMENTS))
def test_every_config_reads_a_cache_the_experiment_prepares(name):
    experiment = experiments.EXPERIMENTS[name]
    prepared = {f"{root}/{cache}" for root, cache in experiment.caches}
    for root, cache in experiment.caches:
        assert (REPO_ROOT / experiments.CHAINS[cache]).is_file()
        assert root in experiments.DATASETS
    classifier = (experiment.classifier,) if experiment.classifier else ()
    for config in experiment.configs + classifier:
        cfg = Config.fromfile(REPO_ROOT / config)
        for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
            dataset = cfg[loader]["dataset"]
            assert dataset["cache_root"] in prepared, (config, loader, dataset["cache_root"])
            assert dataset["cache_root"].startswith(dataset["data_root"] + "/")


def test_confounding_trains_on_confounded_infants_and_tests_on_independent_ones():
    experiment = experiments.EXPERIMENTS["confounding-demo"]
    assert "--confound" in experiments.DATASETS["data/gm_confound"]
    assert "--confound" not in experiments.DATASETS["data/gm_synthetic"]  # default 0
    caches = set()
    for config in experiment.configs:
        cfg = Config.fromfile(REPO_ROOT / config)
        assert cfg.train_dataloader.dataset.data_root == "data/gm_confound"
        assert cfg.val_dataloader.dataset.data_root == "data/gm_confound"
        assert cfg.test_dataloader.dataset.data_root == "data/gm_synthetic"
        assert cfg.test_dataloader.dataset.split == "all"
        caches.add(Path(cfg.train_dataloader.dataset.cache_root).name)
        assert (
            Path(cfg.test_dataloader.dataset.cache_root).name
            == Path(cfg.train_dataloader.dataset.cache_root).name
        )  # tested on the same preprocessing as trained
    assert caches == {"cache_demo", "cache_demo_no-bg", "cache_demo_no-align", "cache_demo_none"}


def _final_checkpoint(config: str) -> str:
    """The checkpoint tools/train.py leaves last for a config: iter_<max> or epoch_<max>."""
    train_cfg = Config.fromfile(REPO_ROOT / config).train_cfg
    if "max_iters" in train_cfg:
        return f"iter_{train_cfg.max_iters}.pth"
    return f"epoch_{train_cfg.max_epochs}.pth"


def test_preprocessing_scores_the_models_it_trains_on_infants_they_never_saw():
    experiment = experiments.EXPERIMENTS["preprocessing"]
    steps = {
        step["type"]: step
        for step in Config.fromfile(REPO_ROOT / experiment.pipeline).preprocess_pipeline
    }
    trained = [(m.config, m.checkpoint) for m in experiment_models(experiment, REPO_ROOT)]
    assert len(trained) == 3  # segmentation, pose, pose fine-tuned from it
    for step in ("BackgroundRemoval", "PoseAlignment"):
        assert (steps[step]["config"], steps[step]["checkpoint"]) in trained
    for position, (config, checkpoint) in enumerate(trained):
        assert Path(checkpoint).parent.name == Path(config).stem  # tools/train.py's work dir
        assert Path(checkpoint).name == _final_checkpoint(config)
        cfg = Config.fromfile(REPO_ROOT / config)
        # trained on the extra infants (p*) of a dataset the experiment makes
        root = Path(cfg.train_dataloader.dataset.data_root).parent
        assert str(root) in experiment.datasets and str(root) in experiments.DATASETS
        # a model that starts from another one is trained after it
        if cfg.get("load_from"):
            assert cfg.load_from in [c for _, c in trained[:position]]
    # scored on the recorded infants (s*) of the default dataset
    assert "data/gm_synthetic" in experiment.datasets and not experiment.configs


def test_the_demo_trains_the_models_its_chain_loads_and_tests_on_the_cache_it_makes():
    demo = experiments.EXPERIMENTS["demo"]
    chain = Config.fromfile(REPO_ROOT / experiments.CHAINS["cache_demo"])
    models = experiment_models(demo, REPO_ROOT)
    assert [(m.role, m.config, m.checkpoint) for m in models] == [
        ("segmentation", chain.seg_config, chain.seg_checkpoint),
        ("pose", chain.pose_config, chain.pose_checkpoint),
    ]
    assert demo.caches == (("data/gm_synthetic", "cache_demo"),) and demo.staged
    assert demo.classifier in experiments.EXPERIMENTS["table1-demo"].configs
    # the cross-validated experiments use the demo's models for their demo-size caches
    for name in ("table1-demo", "confounding-demo"):
        assert experiment_models(experiments.EXPERIMENTS[name], REPO_ROOT) == models
