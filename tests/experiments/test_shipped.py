"""The shipped experiments name configs and caches that exist and agree with each other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mmengine.config import Config

from gm_plugins.experiments import shipped as experiments
from gm_plugins.experiments import zoo_evaluation
from gm_plugins.experiments.shipped import experiment_models
from gm_plugins.experiments.zoo_evaluation import preprocessing_models

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


def test_preprocessing_retrains_every_zoo_model_and_scores_it_on_infants_it_never_saw():
    experiment = experiments.EXPERIMENTS["preprocessing"]
    assert experiment.pipeline in experiment.zoo_chains
    zoo_chains = {model.metadata["Chain"] for model in preprocessing_models(REPO_ROOT)}
    assert set(experiment.zoo_chains) == zoo_chains  # every zoo preprocessing model
    retrained = experiment_models(experiment, REPO_ROOT, retrain=True)
    published = experiment_models(experiment, REPO_ROOT)
    assert all(model.published for model in published)
    # each zoo model retrained as tools/train.py writes it, plus the model one starts from
    assert {m.training(REPO_ROOT) for m in published} < set(retrained)
    assert len(retrained) == len(published) + 1
    for position, model in enumerate(retrained):
        assert Path(model.checkpoint).parent.name == Path(model.config).stem
        assert Path(model.checkpoint).name == _final_checkpoint(model.config)
        cfg = Config.fromfile(REPO_ROOT / model.config)
        # trained on the extra infants (p*) of a dataset the experiment makes
        root = Path(cfg.train_dataloader.dataset.data_root).parent
        assert str(root) in experiment.datasets and str(root) in experiments.DATASETS
        # a model that starts from another one is trained after it
        if cfg.get("load_from"):
            assert cfg.load_from in [m.checkpoint for m in retrained[:position]]
    # scored on the recorded infants (s*) of the default dataset
    assert "data/gm_synthetic" in experiment.datasets and not experiment.configs


def test_preprocessing_measures_the_retrained_chains_against_the_zoo_records(tmp_path, monkeypatch):
    measured = []

    def evaluate_chain(chain, data_root):
        steps = Config.fromfile(chain).preprocess_pipeline
        measured.append([step["checkpoint"] for step in steps if step.get("checkpoint")])
        return dict(iou=0.0, pck=1.0, aligned=1.0)  # segmentation worse than any record

    monkeypatch.setattr(zoo_evaluation, "evaluate_chain", evaluate_chain)
    monkeypatch.setattr(zoo_evaluation, "ensure_evaluation_dataset", lambda root, workers: root)
    experiment = experiments.EXPERIMENTS["preprocessing"]
    driver = experiments.Driver(
        experiment, REPO_ROOT, experiments.Options(work_dir=tmp_path, retrain=True)
    )
    driver.retrained_chains()
    assert not driver.check_zoo()

    assert len(measured) == len(experiment.zoo_chains)
    trained = {m.checkpoint for m in experiment_models(experiment, REPO_ROOT, retrain=True)}
    assert all(checkpoint in trained for checkpoints in measured for checkpoint in checkpoints)
    report = json.loads((tmp_path / "zoo_check.json").read_text())
    models = {m.name: m for m in preprocessing_models(REPO_ROOT)}
    assert set(report) == set(models)
    for name, entry in report.items():
        worse = any("WORSE" in line for line in entry["checks"])
        assert worse == any(r["Task"] == "Background Removal" for r in models[name].results)


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
