"""The shipped benchmarks name configs and caches that exist and agree with each other."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
# Loaded by path: putting tools/ on sys.path would shadow the standard library's `test`.
_spec = importlib.util.spec_from_file_location(
    "run_benchmark", REPO_ROOT / "tools" / "run_benchmark.py"
)
run_benchmark = importlib.util.module_from_spec(_spec)
sys.modules["run_benchmark"] = run_benchmark  # dataclasses look their module up
_spec.loader.exec_module(run_benchmark)


@pytest.mark.parametrize("name", sorted(run_benchmark.EXPERIMENTS))
def test_every_config_reads_a_cache_the_experiment_prepares(name):
    experiment = run_benchmark.EXPERIMENTS[name]
    prepared = {f"{root}/{cache}" for root, cache in experiment.caches}
    for root, cache in experiment.caches:
        assert (REPO_ROOT / run_benchmark.CHAINS[cache]).is_file()
        assert root in run_benchmark.DATASETS
    for config in experiment.configs:
        cfg = Config.fromfile(REPO_ROOT / config)
        for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
            dataset = cfg[loader]["dataset"]
            assert dataset["cache_root"] in prepared, (config, loader, dataset["cache_root"])
            assert dataset["cache_root"].startswith(dataset["data_root"] + "/")


def test_confounding_trains_on_confounded_infants_and_tests_on_independent_ones():
    experiment = run_benchmark.EXPERIMENTS["confounding"]
    assert "--confound" in run_benchmark.DATASETS["data/gm_confound"]
    assert "--confound" not in run_benchmark.DATASETS["data/gm_synthetic"]  # default 0
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
    experiment = run_benchmark.EXPERIMENTS["preprocessing"]
    steps = {
        step["type"]: step
        for step in Config.fromfile(REPO_ROOT / experiment.pipeline).preprocess_pipeline
    }
    trained = list(experiment.models)
    for step in ("BackgroundRemoval", "PoseAlignment"):
        assert (steps[step]["config"], steps[step]["checkpoint"]) in trained
    for position, (config, checkpoint) in enumerate(trained):
        assert Path(checkpoint).parent.name == Path(config).stem  # tools/train.py's work dir
        assert Path(checkpoint).name == _final_checkpoint(config)
        cfg = Config.fromfile(REPO_ROOT / config)
        # trained on the extra infants (p*) of a dataset the experiment makes
        root = Path(cfg.train_dataloader.dataset.data_root).parent
        assert str(root) in experiment.datasets and str(root) in run_benchmark.DATASETS
        # a model that starts from another one is trained after it
        if cfg.get("load_from"):
            assert cfg.load_from in [c for _, c in trained[:position]]
    # scored on the recorded infants (s*) of the default dataset
    assert "data/gm_synthetic" in experiment.datasets and not experiment.configs
