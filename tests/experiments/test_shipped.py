"""The shipped experiments name configs and caches that exist and agree with each other."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

from gm_plugins.experiments import model_cache, zoo_evaluation
from gm_plugins.experiments import shipped as experiments
from gm_plugins.experiments.shipped import experiment_models
from gm_plugins.experiments.zoo_evaluation import preprocessing_models
from gm_plugins.utils.processes import Stage

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


# -- data before models, disjoint infants, one driver per folder ---------------------------------


def _seed(arguments: list[str]) -> str:
    return arguments[arguments.index("--seed") + 1] if "--seed" in arguments else "0"


def test_every_shipped_dataset_has_infants_of_its_own():
    from gm_plugins.experiments.benchmark_definition import BENCHMARK

    seeds = [_seed(arguments) for arguments in experiments.DATASETS.values()]
    assert len(set(seeds)) == len(seeds)  # gm_preprocessing no longer repeats gm_synthetic's
    others = {str(zoo_evaluation.EVALUATION_DATASET["seed"])}
    others |= {_seed(list(dataset.args)) for dataset in BENCHMARK.datasets}
    assert not set(seeds) & others


class FakeTools:
    """Stages run by pretending: a dataset stage writes its meta.json, a training its checkpoint."""

    def __init__(self, root: Path, checkpoint: str) -> None:
        self.root, self.checkpoint, self.ran = root, checkpoint, []

    def make_stage(self, name: str, key: str, module: str, *args: object) -> Stage:
        return Stage(name, [module, *map(str, args)])

    def run(self, stage: Stage) -> None:
        module, *args = stage.command
        self.ran.append((module, args))
        if module == experiments.MAKE_DATASET:
            out = self.root / args[args.index("--out") + 1]
            arguments = dict(zip(args[::2], args[1::2], strict=False))
            meta = dict(complete=True, arguments={k.lstrip("-").replace("-", "_"): v
                                                  for k, v in arguments.items()})  # fmt: skip
            (out / "mmseg").mkdir(parents=True, exist_ok=True)
            (out / "meta.json").write_text(json.dumps(meta))
        else:
            (self.root / self.checkpoint).parent.mkdir(parents=True, exist_ok=True)
            (self.root / self.checkpoint).write_bytes(b"weights")


def test_a_fresh_machine_makes_the_models_data_before_training_them(tmp_path, monkeypatch):
    monkeypatch.setenv("GM_PLUGINS_MODEL_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "clone"
    (root / "configs/preprocess").mkdir(parents=True)
    (root / "configs/preprocess/seg.py").write_text(
        "train_dataloader = dict(dataset=dict(data_root='data/gm_preprocessing/mmseg/'))\n"
    )
    model = experiments.Model("configs/preprocess/seg.py", "work_dirs/seg/iter_1.pth", "seg")
    assert experiments.model_datasets(model, root) == ["data/gm_preprocessing"]
    tools = FakeTools(root, model.checkpoint)
    experiments.prepare_model(model, root, tools.run, tools.make_stage)
    assert [module for module, _ in tools.ran] == [experiments.MAKE_DATASET, experiments.TRAIN]
    assert tools.ran[0][1][:2] == ["--out", "data/gm_preprocessing"]
    assert experiments.DATASETS["data/gm_preprocessing"] == tools.ran[0][1][2:-3]
    experiments.prepare_model(model, root, tools.run, tools.make_stage)
    assert len(tools.ran) == 2  # data and model in place: nothing again

    # A model trained on the dataset made with the old shared seed: the data is set aside and
    # made again, then the model, trained under another key, is trained again.
    meta = json.loads((root / "data/gm_preprocessing/meta.json").read_text())
    meta["arguments"]["seed"] = "0"
    (root / "data/gm_preprocessing/meta.json").write_text(json.dumps(meta))
    model_cache.mark_training(model.config, model.checkpoint, root)  # trained on seed 0
    (root / model.checkpoint).write_bytes(b"weights of the old infants")
    monkeypatch.setenv("GM_PLUGINS_MODEL_CACHE", str(tmp_path / "another machine's cache"))
    experiments.prepare_model(model, root, tools.run, tools.make_stage)
    assert [module for module, _ in tools.ran[2:]] == [experiments.MAKE_DATASET, experiments.TRAIN]
    assert (root / "data/gm_preprocessing.stale").is_dir()
    assert (root / "work_dirs/seg.stale/iter_1.pth").read_bytes() == b"weights of the old infants"


def test_a_published_zoo_model_needs_neither_data_nor_training(tmp_path):
    model = experiments.chain_models(experiments.EVALUATION_PIPELINE, REPO_ROOT)[0]
    assert model.published
    tools = FakeTools(tmp_path, "unused.pth")
    experiments.prepare_model(model, REPO_ROOT, tools.run, tools.make_stage)
    assert tools.ran == []


def test_a_second_driver_on_an_experiments_folder_is_refused(tmp_path, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from gm_plugins.utils.locking import lock_work_dir; "
         "lock_work_dir(sys.argv[1]); print('held', flush=True); sys.stdin.read()",
         str(tmp_path / "demo")],
        cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        options = experiments.Options(work_dir=tmp_path / "demo")
        assert experiments.run_experiment("demo", REPO_ROOT, options) == 2
        error = capsys.readouterr().err
        assert f"{tmp_path / 'demo'} is in use by process {holder.pid}" in error
    finally:
        holder.kill()
        holder.wait()
