"""The shipped experiments of the demo's size (``make demo``, ``make preprocessing``, and the
48-infant cross-validations ``table1-demo`` and ``confounding-demo``) and the driver that runs
them: tools/run_benchmark.py parses arguments and call :func:`run_experiment`.
``make table1`` and ``make confounding`` run the synthetic benchmark
(:mod:`gm_plugins.experiments.benchmark`) instead.

* ``demo``: the main job on synthetic infants: data, preprocessing models, cache, the
  two-stream classifier trained once and tested on held-out infants, metrics and figures.
  Its stages keep marker files (``WORK/stages/<stage>.done``), so a second run reuses the
  stages that finished; delete a marker to redo that stage.
* ``table1-demo``: the paper's Table 1 protocol on the synthetic default dataset (48 infants,
  environment independent of class): stratified 5-fold cross-validation by infant of the
  two-stream model, its ablations (only spatial, only temporal, late fusion, without
  background removal, without alignment) and the baselines (C3D, TSN, CNN + LSTM, ST-GCN).
* ``confounding-demo``: the paper's central claim. Training infants (data/gm_confound) are
  recorded in environments tied to their class; the test infants (all of data/gm_synthetic)
  are not. The two-stream model is cross-validated on the confounded infants with and without
  background removal and alignment, and every fold's model is tested on the independent ones.
* ``preprocessing``: every preprocessing model of the model zoo retrained from its config and
  checked. The evaluation-grade segmentation and pose models train on the extra infants of
  data/gm_preprocessing (seed 2, so none of them is one of data/gm_synthetic's; the pose model
  first on those of data/gm_synthetic), the demo's on
  those of data/gm_synthetic; tools/analysis_tools/evaluate_preprocessing.py scores the
  evaluation-grade chain's mask IoU, PCK and alignment on the 48 infants of data/gm_synthetic,
  which they never saw, and each retrained chain is measured on the zoo's held-out infants
  (data/gm_zoo_eval) against its models' recorded metrics (``WORK/zoo_check.json``).

Every step runs the command a user would run by hand (printed first) and skips work that is
already done. The preprocessing models an experiment trains, and their checkpoints, are read from
its preprocessing configs (the steps' ``config``/``checkpoint`` and a model config's
``load_from``), so they are named in one place.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gm_plugins.preprocess.chain import read_chain_config
from gm_plugins.utils.config import PREPROCESS_SCOPES, load_config
from gm_plugins.utils.io import write_text_atomic
from gm_plugins.utils.locking import WorkDirInUseError, lock_work_dir
from gm_plugins.utils.processes import (
    CommandError,
    Stage,
    module_command,
    run_command,
    run_stage,
    run_stages_in_parallel,
    threads_env,
)
from gm_plugins.utils.zoo import ZooError, published_prefix, zoo_model_of_weights

PREPROCESS = "configs/preprocess"
GM = "configs/gm"
BASELINES = "configs/baselines"
CONFOUNDING = "configs/confounding"

#: The package entry points the stages run with ``python -m`` (tools/*.py run the same).
TRAIN = "gm_plugins.engine.train"
TEST = "gm_plugins.engine.test"
MAKE_DATASET = "gm_plugins.datasets.synthetic.make_dataset"
PREPROCESS_VIDEOS = "gm_plugins.preprocess.preprocess_videos"
EXPORT_BUNDLE = "gm_plugins.deploy.export_bundle"
INFER = "gm_plugins.apis.infer"
EVALUATE_PREPROCESSING = "gm_plugins.evaluation.evaluate_preprocessing"
CROSS_VALIDATE = "gm_plugins.experiments.cross_validate"
#: Dataset folder -> tools/data/make_synthetic_dataset.py arguments (besides --out and --workers).
#: Each has its own seed (gm_synthetic the default 0), so no infant is in two of them.
DATASETS = {
    "data/gm_synthetic": ["--subjects", "48", "--prep-subjects", "240", "--prep-frames", "6"],
    "data/gm_confound": ["--subjects", "48", "--seed", "1", "--confound", "1.0",
                         "--prep-subjects", "0"],
    # Its own seed: with seed 0 its first 240 extra infants were those of data/gm_synthetic.
    "data/gm_preprocessing": ["--subjects", "3", "--seed", "2", "--prep-subjects", "1200",
                              "--prep-frames", "3"],
}  # fmt: skip
#: Cache folder name -> preprocessing config (all at the demo's 64 px).
CHAINS = {
    "cache_demo": f"{PREPROCESS}/preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py",
    "cache_demo_no-bg": f"{PREPROCESS}/preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_"
    "no-background-removal_demo.py",
    "cache_demo_no-align": f"{PREPROCESS}/preprocess_unet-seg_farneback-64_no-alignment_demo.py",
    "cache_demo_none": f"{PREPROCESS}/preprocess_farneback-64_no-background-removal_"
    "no-alignment_demo.py",
    "cache_demo_skeleton": f"{PREPROCESS}/preprocess_unet-seg_res18-pose_farneback-k5-s3.75-64_"
    "skeleton_demo.py",
}
EVALUATION_PIPELINE = (
    f"{PREPROCESS}/preprocess_unet-c16-seg_res18-192-pose_farneback-k30-s3.75-112_synthetic.py"
)
DEMO_CLASSIFIER = f"{GM}/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"
#: What each model-loading preprocessing step's model is called in stage names.
MODEL_ROLES = {"BackgroundRemoval": "segmentation", "PoseAlignment": "pose"}
#: Metrics of the demo's test table, infant and window level.
SUMMARY_KEYS = ("accuracy", "precision", "recall", "f1", "mcc", "kappa", "roc_auc")


@dataclass(frozen=True)
class Model:
    """A preprocessing model tools/train.py trains from ``config`` into ``checkpoint``.

    ``checkpoint`` may be a published zoo file (``zoo/...-<sha8>.pth``): then the model is
    taken from the repository, and :meth:`training` says where a retraining writes it.
    """

    config: str
    checkpoint: str
    role: str

    @property
    def published(self) -> bool:
        """Whether the checkpoint is a published zoo file."""
        return published_prefix(self.checkpoint) is not None

    def training(self, root: str | os.PathLike = ".") -> Model:
        """The model as tools/train.py writes it (itself when it is not a zoo file)."""
        if not self.published:
            return self
        entry = zoo_model_of_weights(self.checkpoint, root)
        trained = entry.metadata.get("Training Checkpoint")
        if not trained:
            raise ZooError(f"{entry.metafile}: {entry.name} has no Metadata.Training Checkpoint")
        return Model(self.config, trained, self.role)


@dataclass(frozen=True)
class Experiment:
    """What an experiment prepares and runs.

    Attributes:
        configs: classifier configs cross-validated (tools/cross_validate.py).
        caches: (data root, cache folder name) pairs preprocessed with :data:`CHAINS`.
        datasets: datasets made besides the caches' data roots.
        pipeline: a preprocessing config scored against the ground truth of data/gm_synthetic.
        classifier: a classifier config trained once on its own split and tested (the demo).
        staged: the demo's way of running: stages with markers under ``WORK/stages``, one
            thread per process, independent models trained side by side with logs, progress
            bars shown.
        zoo_chains: chains whose zoo models the experiment retrains from their configs and
            measures on the zoo's held-out infants against their recorded metrics (the
            experiment always retrains).
    """

    configs: tuple[str, ...] = ()
    caches: tuple[tuple[str, str], ...] = ()
    datasets: tuple[str, ...] = ()
    pipeline: str | None = None
    classifier: str | None = None
    staged: bool = False
    zoo_chains: tuple[str, ...] = ()

    @property
    def chains(self) -> tuple[str, ...]:
        """The preprocessing configs whose models the experiment needs, in order."""
        chains = [CHAINS[name] for _, name in self.caches]
        chains += [self.pipeline] if self.pipeline else []
        chains += list(self.zoo_chains)
        return tuple(dict.fromkeys(chains))

    @property
    def data_roots(self) -> list[str]:
        """Every dataset the experiment reads, sorted."""
        return sorted({root for root, _ in self.caches} | set(self.datasets))


EXPERIMENTS = {
    "demo": Experiment(
        caches=(("data/gm_synthetic", "cache_demo"),), classifier=DEMO_CLASSIFIER, staged=True
    ),
    "table1-demo": Experiment(
        configs=(
            DEMO_CLASSIFIER,
            f"{GM}/spatial-only_r18-3stage_demo_gm-synthetic.py",
            f"{GM}/temporal-only_r18-3stage_demo_gm-synthetic.py",
            f"{GM}/two-stream_r18-3stage-late-fusion_demo_gm-synthetic.py",
            f"{GM}/two-stream_r18-3stage-concat-fusion_no-background-removal_demo_gm-synthetic.py",
            f"{GM}/two-stream_r18-3stage-concat-fusion_no-alignment_demo_gm-synthetic.py",
            f"{BASELINES}/c3d_base16_demo_gm-synthetic.py",
            f"{BASELINES}/tsn-rgb_r18-3stage_demo_gm-synthetic.py",
            f"{BASELINES}/cnn-lstm_r18-3stage_demo_gm-synthetic.py",
            f"{BASELINES}/stgcn_c16-s6_joint-motion_5s-windows_demo_gm-synthetic.py",
        ),
        caches=tuple(
            ("data/gm_synthetic", name)
            for name in (
                "cache_demo",
                "cache_demo_no-bg",
                "cache_demo_no-align",
                "cache_demo_skeleton",
            )
        ),
    ),
    "confounding-demo": Experiment(
        configs=tuple(
            f"{CONFOUNDING}/two-stream_r18-3stage-concat-fusion{variant}_demo_gm-confound.py"
            for variant in ("", "_no-preprocessing", "_no-background-removal", "_no-alignment")
        ),
        caches=tuple(
            (root, name)
            for root in ("data/gm_confound", "data/gm_synthetic")
            for name in ("cache_demo", "cache_demo_no-bg", "cache_demo_no-align", "cache_demo_none")
        ),
    ),
    "preprocessing": Experiment(
        datasets=("data/gm_synthetic", "data/gm_preprocessing"),
        pipeline=EVALUATION_PIPELINE,
        zoo_chains=(CHAINS["cache_demo"], EVALUATION_PIPELINE),
    ),
}
#: How far below its recorded metric a retrained zoo model may land and still be reported as
#: holding: one of the 24 held-out videos is 0.042 of a per-video share.
RETRAINED_TOLERANCE = 0.05


def made_with(folder: str | os.PathLike) -> tuple[dict, bool] | None:
    """The generator arguments ``folder``'s dataset was made with and whether it is complete
    (None: no dataset there)."""
    meta_file = Path(folder) / "meta.json"
    if not meta_file.is_file():
        return None
    meta = json.loads(meta_file.read_text())
    return dict(meta.get("arguments", {})), bool(meta.get("complete"))


def arguments_agree(recorded: Mapping, arguments: Sequence[str]) -> bool:
    """Whether recorded generator arguments agree with ``--flag value`` pairs (as
    :data:`DATASETS` gives them; numbers compared as numbers)."""
    for flag, value in zip(arguments[::2], arguments[1::2], strict=True):
        found = recorded.get(flag.lstrip("-").replace("-", "_"))
        if found is None:
            return False
        if str(found) != value:
            try:
                if float(found) != float(value):
                    return False
            except (TypeError, ValueError):
                return False
    return True


def dataset_matches(folder: str | os.PathLike, arguments: Sequence[str]) -> bool:
    """Whether ``folder`` holds a complete dataset made with ``arguments``."""
    found = made_with(folder)
    return found is not None and found[1] and arguments_agree(found[0], arguments)


def model_datasets(model: Model, root: str | os.PathLike = ".") -> list[str]:
    """The shipped datasets (:data:`DATASETS`) ``model`` trains or validates on."""
    from mmengine.config import Config

    from gm_plugins.experiments.model_cache import data_roots

    roots = [Path(r) for r in data_roots(Config.fromfile(str(Path(root) / model.config)))]
    return [name for name in DATASETS if any(r == Path(name) or Path(name) in r.parents
                                             for r in roots)]  # fmt: skip


def ensure_dataset(
    name: str,
    root: Path,
    run: Callable[[Stage], None],
    make_stage: Callable[..., Stage],
    workers: int = 2,
) -> bool:
    """Make the shipped dataset ``name`` unless ``root / name`` holds it, complete and made with
    its :data:`DATASETS` arguments (an unfinished one of those arguments is resumed); a
    dataset made with other arguments is set aside first (said). Returns whether it ran."""
    from gm_plugins.experiments.results_store import set_aside

    folder, arguments = root / name, DATASETS[name]
    if dataset_matches(folder, arguments):
        return False
    found = made_with(folder)
    if found is not None and not arguments_agree(found[0], arguments):
        aside = set_aside(folder)
        print(f"{name}: made with other arguments ({found[0]}): moved to {aside}", flush=True)
    run(make_stage(f"data {name}", "data", MAKE_DATASET, "--out", name, *arguments,
                   "--workers", workers, "--quiet"))  # fmt: skip
    return True


def prepare_model(
    model: Model,
    root: Path,
    run: Callable[[Stage], None],
    make_stage: Callable[..., Stage],
    workers: int = 2,
) -> None:
    """Put ``model``'s checkpoint in place: a published zoo file as it is; else from the
    per-machine model cache (:mod:`gm_plugins.experiments.model_cache`) when it holds the
    model of the current key, or trained (resuming an interrupted training of that key) and
    then stored there. The shipped datasets it trains on are made first (a fresh machine has
    none)."""
    from gm_plugins.experiments.model_cache import mark_training, restore_model, store_model

    if model.published:
        return  # the repository's file, checked against its sha256 when it is loaded
    for name in model_datasets(model, root):
        ensure_dataset(name, root, run, make_stage, workers)
    if restore_model(model.config, model.checkpoint, root):
        return
    mark_training(model.config, model.checkpoint, root)
    run(make_stage(f"{model.role} model", model.role, TRAIN, model.config,
                   "--resume"))  # fmt: skip
    stored = store_model(model.config, model.checkpoint, root)
    print(f"{model.checkpoint}: stored in the model cache ({stored.parent})", flush=True)


def model_config_of(checkpoint: str) -> str:
    """The config tools/train.py trains ``work_dirs/<name>/<file>.pth`` from."""
    return f"{PREPROCESS}/{Path(checkpoint).parent.name}.py"


def chain_models(
    chain: str | os.PathLike, root: str | os.PathLike = ".", retrain: bool = False
) -> list[Model]:
    """The models a preprocessing config loads, in training order.

    A model whose config starts from another model's checkpoint (``load_from`` under
    ``work_dirs/``) comes after that model, unless it is taken from the zoo. With ``retrain``
    zoo models come as tools/train.py writes them (:meth:`Model.training`).
    """
    root = Path(root)
    cfg = read_chain_config(root / chain)
    models: list[Model] = []
    for step in cfg.preprocess_pipeline:
        if step.get("config") and step.get("checkpoint") and step["type"] in MODEL_ROLES:
            model = Model(step["config"], step["checkpoint"], MODEL_ROLES[step["type"]])
            _add_with_prerequisites(models, model.training(root) if retrain else model, root)
    return models


def _add_with_prerequisites(models: list[Model], model: Model, root: Path) -> None:
    start_from = None if model.published else load_config(root / model.config).get("load_from")
    if start_from and Path(start_from).parts[0] == "work_dirs":
        prerequisite = Model(model_config_of(start_from), start_from, model.role)
        _add_with_prerequisites(models, prerequisite, root)
    if model not in models:
        models.append(model)


def experiment_models(
    experiment: Experiment, root: str | os.PathLike = ".", retrain: bool = False
) -> list[Model]:
    """Every preprocessing model of the experiment's chains, each once, in training order."""
    models: list[Model] = []
    for chain in experiment.chains:
        models += [model for model in chain_models(chain, root, retrain) if model not in models]
    return models


@dataclass
class Options:
    """How to run an experiment (the tools' command-line options)."""

    work_dir: Path
    workers: int = 2
    folds: int = 5
    seed: int = 0
    repeats: int = 1
    jobs: int = 2
    retrain: bool = False


class Driver:
    """Runs one experiment's stages from the repository root ``root``."""

    def __init__(self, experiment: Experiment, root: Path, options: Options) -> None:
        self.experiment, self.root, self.options = experiment, root, options
        self.env = threads_env(1) if experiment.staged else None
        self.stages: list[Stage] = []
        self.stage_dir = options.work_dir / "stages"
        self.models = experiment_models(experiment, root, options.retrain)
        #: Chain config per cache name (and, for the pipeline and the zoo chains, per config
        #: path): the shipped ones, or (retraining) derived ones.
        self.chains = {name: CHAINS[name] for _, name in experiment.caches}
        covered = set(self.chains.values())
        self.chains.update({chain: chain for chain in experiment.chains if chain not in covered})
        #: Cache folder per cache name: retrained models make caches of their own.
        suffix = "-retrained" if options.retrain else ""
        self.cache_dirs = {name: f"{root}/{name}{suffix}" for root, name in experiment.caches}

    @property
    def trained_models(self) -> list[Model]:
        """The models this run trains: all when retraining, else those not in the zoo."""
        return [model for model in self.models if not model.published]

    def retrained_chains(self) -> None:
        """Write each chain with the retrained checkpoints instead of the zoo's."""
        replace = {
            model.checkpoint: model.training(self.root).checkpoint
            for model in experiment_models(self.experiment, self.root)
        }
        for name, chain in self.chains.items():
            cfg = load_config(self.root / chain, scopes=PREPROCESS_SCOPES)
            for step in cfg.preprocess_pipeline:
                if step.get("checkpoint") in replace:
                    step["checkpoint"] = replace[step["checkpoint"]]
            derived = self.options.work_dir / "chains" / f"{Path(name).stem}.py"
            derived.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(derived, f"# {chain} with retrained models\n" + cfg.pretty_text)
            self.chains[name] = str(derived)

    def stage(self, name: str, key: str, module: str, *args: object) -> Stage:
        staged = self.experiment.staged
        stage = Stage(
            name, module_command(module, *args), self.stage_dir / f"{key}.done" if staged else None
        )
        self.stages.append(stage)
        return stage

    def run(self, stage: Stage) -> None:
        if self.experiment.staged:
            run_stage(stage, self.env, self.root)
        else:
            run_command(stage.command, stage.name, cwd=self.root, announce="\n")

    def prepare(self) -> None:
        """Datasets, preprocessing models and caches the experiment reads."""
        staged, workers = self.experiment.staged, self.options.workers
        count = self._stage_count()
        for root in self.experiment.data_roots:
            if staged:
                self.run(self.stage(f"1/{count} synthetic infants", "data",
                         MAKE_DATASET, "--out", root, *DATASETS[root],
                         "--workers", workers))  # fmt: skip
            else:
                ensure_dataset(root, self.root, self.run, self.stage, workers)
        models = self.trained_models
        if self.options.retrain:
            self.retrained_chains()
        if staged:
            model_stages = [
                self.stage(f"{2 + i}/{count} {model.role} model", model.role, TRAIN,
                           model.config)
                for i, model in enumerate(models)
            ]  # fmt: skip
            for stage in model_stages:
                stage.log = self.options.work_dir / "logs" / f"{stage.marker.stem}.log"
            run_stages_in_parallel(model_stages, self.env, self.root)
        else:
            for model in models:
                prepare_model(model, self.root, self.run, self.stage, workers)
        for root, name in self.experiment.caches:
            quiet = () if staged else ("--quiet",)
            title = "preprocessing: background removal, alignment, optical flow"
            self.run(self.stage(f"{2 + len(models)}/{count} {title}" if staged else name,
                     "preprocess", PREPROCESS_VIDEOS, self.chains[name],
                     "--data-root", root, "--out", self.cache_dirs[name], "--workers", workers,
                     *quiet))  # fmt: skip

    def _stage_count(self) -> int:
        """Stages of a staged run: data, models, caches, classifier and its test."""
        experiment = self.experiment
        classifier_stages = 4 if experiment.classifier else 0  # train, test, bundle, classify
        return (
            len(experiment.data_roots)
            + len(self.trained_models)
            + len(experiment.caches)
            + classifier_stages
        )

    def classify(self) -> None:
        """Train the classifier once (resumable), test it on the held-out infants, report."""
        from gm_plugins.engine.runner import best_or_last_checkpoint

        count, work_dir = self._stage_count(), self.options.work_dir
        classifier = self.experiment.classifier
        classifier_dir = work_dir / "two_stream"
        train_args = (classifier, "--work-dir", classifier_dir, "--resume", *self.cache_option())
        title = f"{count - 3}/{count} two-stream classifier"
        self.run(self.stage(title, "classifier", TRAIN, *train_args))
        metrics_file = work_dir / "test_metrics.json"
        test = self.stage(f"{count - 2}/{count} test on held-out infants", "test", TEST,
                          classifier, best_or_last_checkpoint(classifier_dir), "--work-dir",
                          work_dir / "test", "--metrics-out", metrics_file,
                          *self.cache_option())  # fmt: skip
        test.marker.unlink(missing_ok=True)  # always re-test: it is quick and prints the table
        self.run(test)
        report_test(metrics_file, classifier_dir, work_dir)
        bundle, reports = work_dir / "bundle", work_dir / "infer"
        export = self.stage(f"{count - 1}/{count} model bundle", "bundle",
        EXPORT_BUNDLE,
                            classifier, best_or_last_checkpoint(classifier_dir), "--out", bundle,
                            "--overwrite", *self.chain_option())  # fmt: skip
        export.marker.unlink(missing_ok=True)  # the checkpoint may be new: export again
        self.run(export)
        videos = held_out_videos(self.root / classifier, self.root, count=2)
        title = f"{count}/{count} classify two held-out infants' videos"
        infer = self.stage(title, "infer", INFER, *videos, "--bundle", bundle,
                           "--out", reports)  # fmt: skip
        infer.marker.unlink(missing_ok=True)
        self.run(infer)
        print(f"\nreports of two held-out infants: {reports / 'index.html'}")
        print(f"classify your own video: python tools/infer.py VIDEO --bundle {bundle} --out DIR")

    def cache_option(self) -> tuple[str, ...]:
        """``--cfg-options`` pointing the classifier at the retrained chain's cache."""
        if not self.options.retrain:
            return ()
        cache = self.cache_dirs[self.experiment.caches[0][1]]
        loaders = ("train", "val", "test")
        return (
            "--cfg-options",
            *(f"{name}_dataloader.dataset.cache_root={cache}" for name in loaders),
        )

    def chain_option(self) -> tuple[str, ...]:
        """``--preprocess-config`` for the bundle when the chain was retrained."""
        if not self.options.retrain:
            return ()
        return ("--preprocess-config", self.chains[self.experiment.caches[0][1]])

    def benchmark(self) -> None:
        """Score the preprocessing pipeline and cross-validate the configs."""
        options = self.options
        if self.experiment.pipeline is not None:
            self.run(self.stage("evaluate preprocessing", "evaluate",
                     EVALUATE_PREPROCESSING, self.chain_of(self.experiment.pipeline),
                     "--data-root", "data/gm_synthetic", "--out", options.work_dir))  # fmt: skip
        if self.experiment.configs:
            self.run(self.stage("cross-validation", "cross_validate", CROSS_VALIDATE,
                     *self.experiment.configs, "--folds", options.folds, "--seed", options.seed,
                     "--repeats", options.repeats, "--jobs", options.jobs, "--work-dir",
                     options.work_dir))  # fmt: skip

    def chain_of(self, chain: str) -> str:
        """The config a chain runs as: itself, or its derived copy with retrained models."""
        return self.chains.get(chain, chain)

    def check_zoo(self) -> bool:
        """Measure each zoo chain with its retrained models on the zoo's held-out infants and
        print every zoo model's recorded and measured metrics; writes ``WORK/zoo_check.json``.
        Returns whether every metric holds within :data:`RETRAINED_TOLERANCE`."""
        from .zoo_evaluation import (
            EVALUATION_ROOT,
            compare,
            ensure_evaluation_dataset,
            evaluate_chain,
            preprocessing_models,
        )

        data_root = ensure_evaluation_dataset(self.root / EVALUATION_ROOT, self.options.workers)
        report: dict[str, dict] = {}
        print(f"\nretrained models against the zoo's records ({data_root}):")
        for chain in self.experiment.zoo_chains:
            entries = [m for m in preprocessing_models(self.root) if m.metadata["Chain"] == chain]
            if not entries:
                raise ZooError(f"no zoo model names {chain} as its Metadata.Chain")
            figures = evaluate_chain(self.root / self.chain_of(chain), data_root)
            for model in entries:
                lines = compare(model, figures, RETRAINED_TOLERANCE)
                print("\n".join(f"  {line}" for line in lines))
                report[model.name] = dict(chain=self.chain_of(chain), checks=lines)
        write_text_atomic(self.options.work_dir / "zoo_check.json", json.dumps(report, indent=2))
        return not any("WORSE" in line for entry in report.values() for line in entry["checks"])


def held_out_videos(
    classifier_config: str | os.PathLike, root: str | os.PathLike, count: int = 2
) -> list[Path]:
    """Videos of ``count`` test-fold infants of a classifier config (different labels first);
    a relative ``data_root`` is taken from the repository root ``root``."""
    from gm_plugins.datasets.folds import split_subjects, stratified_subject_folds
    from gm_plugins.datasets.subjects import read_subjects
    from gm_plugins.utils.config import load_config

    dataset = load_config(classifier_config).test_dataloader.dataset
    data_root = Path(root) / dataset.data_root
    rows = read_subjects(data_root / dataset.ann_file, data_root, check_videos=False)
    ids = [row["subject_id"] for row in rows]
    folds = stratified_subject_folds(ids, [row["label"] for row in rows],
                                     dataset.num_folds, dataset.fold_seed)  # fmt: skip
    test = set(split_subjects(folds, "test", dataset.test_fold, dataset.get("val_fold")))
    chosen, labels = [], set()
    for row in sorted((r for r in rows if r["subject_id"] in test), key=lambda r: r["subject_id"]):
        if row["label"] not in labels and len(chosen) < count:
            chosen.append(row)
            labels.add(row["label"])
    for row in sorted((r for r in rows if r["subject_id"] in test), key=lambda r: r["subject_id"]):
        if row not in chosen and len(chosen) < count:
            chosen.append(row)
    return [data_root / row["video"] for row in chosen]


def report_test(metrics_file: Path, classifier_dir: Path, out_dir: Path) -> None:
    """Print the test table; write the confusion matrix and the training curve next to it."""
    from gm_plugins.datasets.subjects import GM_CLASSES
    from gm_plugins.evaluation.aggregation import levels_table
    from gm_plugins.utils.plotting import plot_confusion_matrix, plot_training_curve

    metrics = json.loads(metrics_file.read_text())
    print("\nInfant-level and window-level results on held-out synthetic infants (test fold):")
    print(levels_table(metrics, SUMMARY_KEYS))
    matrix_png = plot_confusion_matrix(
        metrics["subject/confusion_matrix"], GM_CLASSES, out_dir / "confusion_matrix.png",
        "infant-level confusion (test fold)",
    )  # fmt: skip
    curve_png = plot_training_curve(classifier_dir, out_dir / "training_curve.png")
    print(f"\nwrote {matrix_png} and {curve_png}")


def run_experiment(name: str, root: str | os.PathLike, options: Options) -> int:
    """Run experiment ``name`` from the repository root ``root``; returns the exit code.

    A relative ``options.work_dir`` is taken from ``root``; the driver holds it (a second
    driver on it gets exit code 2, naming the process that holds it). A failed step is reported
    (its command, exit code and the end of its log) and stops the experiment with exit code 1;
    what finished is reused by the next run.
    """
    experiment = EXPERIMENTS[name]
    root = Path(root).resolve()
    if not options.work_dir.is_absolute():
        options.work_dir = root / options.work_dir
    try:
        lock = lock_work_dir(options.work_dir)
    except WorkDirInUseError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    with lock:
        return _run_experiment(name, experiment, root, options)


def _run_experiment(name: str, experiment: Experiment, root: Path, options: Options) -> int:
    options.retrain |= bool(experiment.zoo_chains)
    driver = Driver(experiment, root, options)
    begin = time.perf_counter()
    try:
        driver.prepare()
        if experiment.classifier is not None:
            driver.classify()
        driver.benchmark()
        if experiment.zoo_chains and not driver.check_zoo():
            print(f"\n{name}: a retrained model is worse than its zoo record (above)",
                  file=sys.stderr)  # fmt: skip
            return 1
    except CommandError as error:
        rerun = "make demo" if experiment.staged else f"make {name}"
        print(f"\n{name}: {error}\n$ {' '.join(error.command)}\nFix it and run `{rerun}` again: "
              "finished steps are reused.", file=sys.stderr)  # fmt: skip
        return 1
    if experiment.staged:
        print("\nStage times:")
        for stage in driver.stages:
            print(f"  {stage.name:<64} {'reused' if stage.reused else f'{stage.seconds:.0f} s'}")
        print(f"  {'total':<64} {time.perf_counter() - begin:.0f} s")
    else:
        print(f"\n{name}: {time.perf_counter() - begin:.0f} s in all")
    return 0
