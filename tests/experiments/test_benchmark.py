"""The synthetic benchmark: its definition, the model cache, and a miniature run end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from gm_plugins.experiments import benchmark as bm
from gm_plugins.experiments import benchmark_definition as bd
from gm_plugins.experiments import benchmark_runs as br
from gm_plugins.experiments import model_cache
from gm_plugins.experiments.shipped import EVALUATION_PIPELINE, chain_models

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = bd.BENCHMARK


def _arguments(dataset: bd.DataSet) -> dict[str, str]:
    return dict(zip(dataset.args[::2], dataset.args[1::2], strict=True))


def test_the_benchmark_splits_infants_once_with_fixed_seeds_and_a_large_test_set():
    datasets = {d.root: _arguments(d) for d in BENCH.datasets}
    seeds = [args["--seed"] for args in datasets.values()]
    assert len(set(seeds)) == len(seeds)  # every set other infants
    assert "0" not in seeds  # seed 0 made the preprocessing models' infants
    test = int(datasets[BENCH.test]["--subjects"])
    # A 95 % CI of at most +-0.05 at the accuracies seen (0.75 or above), normal approximation.
    assert 1.96 * math.sqrt(0.75 * 0.25 / test) <= 0.05
    for root in (BENCH.train, BENCH.val, BENCH.test):
        assert float(datasets[root]["--confound"]) == 0.0
    for root in (BENCH.confound_train, BENCH.confound_val):
        assert float(datasets[root]["--confound"]) == 1.0
    assert all(args["--prep-subjects"] == "0" for args in datasets.values())


def test_every_benchmark_config_reads_the_splits_and_cache_the_benchmark_names():
    configs = [config for method in BENCH.methods for config in method.configs.values()]
    assert len(configs) == len(set(configs)) >= 20
    for config in configs:
        cfg = Config.fromfile(str(REPO_ROOT / config))
        for loader, root in (("train", BENCH.train), ("val", BENCH.val), ("test", BENCH.test)):
            dataset = cfg[f"{loader}_dataloader"].dataset
            assert dataset.data_root == root and dataset.split == "all", (config, loader)
            assert dataset.cache_root == f"{root}/{BENCH.cache}", (config, loader)
        assert cfg.preprocess_config == BENCH.chains[BENCH.cache]
        assert not cfg.test_dataloader.dataset.exclude_fallbacks  # every method, same infants
    assert BENCH.reference in {m.key for m in BENCH.methods}


def test_every_method_of_the_ordering_claim_and_every_arm_reports_three_seeds_that_did_not_choose():
    keys = {m.key for m in BENCH.methods}
    assert set(BENCH.ordering) == {"spatial-only", "temporal-only", "c3d", "cnn-lstm"} <= keys
    for key in (BENCH.reference, *BENCH.ordering):
        assert len(BENCH.method(key).reported_seeds) >= 3, key
    assert len(BENCH.arm_seed_list) >= 3
    for method in BENCH.methods:
        assert len(method.reported_seeds) >= 1 and method.sees, method.key
        if method.chooses:  # the seed that chose the variant is never reported
            assert bd.CHOOSING_SEED not in method.reported_seeds, method.key
    choosing = {m.key for m in BENCH.methods if m.chooses}
    assert choosing == {"two-stream", "spatial-only", "tsn", "cnn-lstm"}
    assert BENCH.method("two-stream").reported_seeds == (1, 2, 3)
    assert BENCH.method("temporal-only").reported_seeds == (0, 1, 2)


def test_the_benchmark_chain_uses_the_evaluation_grade_models():
    evaluation = chain_models(EVALUATION_PIPELINE, REPO_ROOT)
    for name, chain in BENCH.chains.items():
        assert (REPO_ROOT / chain).is_file()
        for model in chain_models(chain, REPO_ROOT):
            assert model in evaluation, (name, model)
    assert len(chain_models(BENCH.chains[BENCH.cache], REPO_ROOT)) == len(evaluation)


def test_the_rgb_variants_differ_only_in_initial_weights_and_learning_rate():
    family = BENCH.method("two-stream").configs
    cfgs = {v: Config.fromfile(str(REPO_ROOT / c)) for v, c in family.items()}
    pose = Config.fromfile(str(REPO_ROOT / EVALUATION_PIPELINE)).alignment.checkpoint
    backbones = {v: dict(cfg.model.rgb_backbone) for v, cfg in cfgs.items()}
    inits = {v: backbones[v].pop("init_cfg", None) for v in backbones}
    assert all(b == backbones["scratch"] for b in backbones.values())
    assert inits["scratch"] is None and inits["frozen-random"] is None
    for variant in ("pose-pretrained", "pose-pretrained-frozen"):
        assert inits[variant] == dict(type="Pretrained", checkpoint=pose, prefix="backbone.")

    def rgb_lr(cfg):
        keys = cfg.optim_wrapper.get("paramwise_cfg", {}).get("custom_keys", {})
        return keys.get("rgb_backbone", {}).get("lr_mult", 1.0)

    assert {v: rgb_lr(cfg) for v, cfg in cfgs.items()} == {
        "scratch": 1.0,
        "frozen-random": 0.0,
        "pose-pretrained": 0.1,
        "pose-pretrained-frozen": 0.0,
    }


def test_the_model_cache_restores_a_model_only_for_the_same_config(tmp_path, monkeypatch):
    monkeypatch.setenv(model_cache.CACHE_ENV, str(tmp_path / "cache"))
    first, second = tmp_path / "clone1", tmp_path / "clone2"
    for clone in (first, second):
        (clone / "configs").mkdir(parents=True)
        (clone / "configs" / "seg.py").write_text("max_iters = 10\nlr = 0.1\n")
    checkpoint = "work_dirs/seg/iter_10.pth"
    assert not model_cache.restore_model("configs/seg.py", checkpoint, first)  # not trained yet
    (first / checkpoint).parent.mkdir(parents=True)
    (first / checkpoint).write_bytes(b"trained weights")
    stored = model_cache.store_model("configs/seg.py", checkpoint, first)
    assert json.loads((stored.parent / "model.json").read_text())["checkpoint"] == checkpoint
    assert model_cache.restore_model("configs/seg.py", checkpoint, second)
    assert (second / checkpoint).read_bytes() == b"trained weights"
    (second / checkpoint).unlink()
    (second / "configs" / "seg.py").write_text("max_iters = 10\nlr = 0.2\n")  # another model
    assert not model_cache.restore_model("configs/seg.py", checkpoint, second)
    assert not (second / checkpoint).exists()


def test_a_model_that_starts_from_another_is_keyed_by_that_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv(model_cache.CACHE_ENV, str(tmp_path / "cache"))
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "ft.py").write_text("load_from = 'work_dirs/base/epoch_1.pth'\n")
    with pytest.raises(FileNotFoundError, match="train that model first"):
        model_cache.model_key("configs/ft.py", tmp_path)
    start = tmp_path / "work_dirs/base/epoch_1.pth"
    start.parent.mkdir(parents=True)
    start.write_bytes(b"a")
    key_a = model_cache.model_key("configs/ft.py", tmp_path)
    start.write_bytes(b"b")
    assert model_cache.model_key("configs/ft.py", tmp_path) != key_a


def test_validation_figures_are_those_of_the_chosen_checkpoint(tmp_path):
    def record(epoch: int, accuracy: float) -> str:
        return json.dumps({"window/cross_entropy": 1.0 / epoch, "window/accuracy": 0.5,
                           "subject/accuracy": accuracy, "subject/mcc": accuracy - 0.1,
                           "step": epoch})  # fmt: skip

    (tmp_path / "run1/vis_data").mkdir(parents=True)
    (tmp_path / "run1/vis_data/scalars.json").write_text(
        "\n".join([json.dumps({"loss": 1.0, "step": 5}), record(1, 0.4), record(2, 0.9)])
    )
    (tmp_path / "run2/vis_data").mkdir(parents=True)  # resumed: a second timestamp folder
    (tmp_path / "run2/vis_data/scalars.json").write_text(record(3, 0.6))
    (tmp_path / "best_window_cross_entropy_epoch_2.pth").write_bytes(b"")
    figures = br.validation_figures(tmp_path)
    assert figures["epoch"] == 2 and figures["accuracy"] == 0.9
    (tmp_path / "best_window_cross_entropy_epoch_2.pth").unlink()
    assert br.validation_figures(tmp_path)["epoch"] == 3  # no best: the last epoch


def test_a_dataset_counts_as_made_only_with_its_own_arguments(tmp_path):
    dataset = bd.DataSet("d", ("--subjects", "6", "--seconds", "2.5", "--size", "96x72"))
    assert not bm.dataset_complete(dataset, tmp_path)
    (tmp_path / "d").mkdir()
    meta = dict(arguments=dict(subjects=6, seconds=2.5, size="96x72", seed=0), complete=True)
    (tmp_path / "d/meta.json").write_text(json.dumps(meta))
    assert bm.dataset_complete(dataset, tmp_path)
    other = bd.DataSet("d", ("--subjects", "6", "--seconds", "3", "--size", "96x72"))
    assert not bm.dataset_complete(other, tmp_path)  # the tool then refuses or resumes
    (tmp_path / "d/meta.json").write_text(json.dumps(dict(meta, complete=False)))
    assert not bm.dataset_complete(dataset, tmp_path)


def test_progress_estimates_the_time_left_from_finished_runs():
    runs = [br.Run(f"r{i}", "c.py", 0, Path("w"), "a", "b", "c", "x", "x", cost=c)
            for i, c in enumerate((1.0, 1.0, 0.5))]  # fmt: skip
    progress = br.Progress(total=3, remaining_cost=2.5, jobs=1)
    line = progress.finished(runs[0], 100.0)
    assert line.startswith("[1/3] r0 done in 0:01:40") and line.endswith("ETA 0:02:30")


# ----------------------------------------------------------------------------------------------
# A miniature benchmark, end to end
# ----------------------------------------------------------------------------------------------

NO_MODEL_CHAIN = (
    "configs/preprocess/preprocess_farneback-64_no-background-removal_no-alignment_demo.py"
)


def _fake_pose_checkpoint(path: Path) -> Path:
    """A checkpoint shaped like the pose model's: ``backbone.*`` keys of the RGB stream."""
    from mmpose.models.backbones import ResNet

    backbone = ResNet(depth=18, stem_channels=32, base_channels=32)
    state = {f"backbone.{key}": value for key, value in backbone.state_dict().items()}
    torch.save(dict(state_dict=state, meta={}), path)
    return path


def _with_fake_pose(tmp_path: Path, family: str, pose: Path) -> dict[str, str]:
    """The scratch and pose-pretrained variants of ``family``, the latter loading ``pose``."""
    configs = BENCH.method(family).configs
    pretrained = tmp_path / f"{family}_rgb-pose-pretrained_mini.py"
    pretrained.write_text(
        f"_base_ = [{str(REPO_ROOT / configs['pose-pretrained'])!r}]\n"
        f"model = dict(rgb_backbone=dict(init_cfg=dict(checkpoint={str(pose)!r})))\n"
    )
    return {"scratch": configs["scratch"], "pose-pretrained": str(pretrained)}


def _miniature(tmp_path: Path) -> bd.Benchmark:
    pose = _fake_pose_checkpoint(tmp_path / "pose.pth")
    data = tmp_path / "data"

    def dataset(name: str, subjects: int, seed: int, confound: float = 0.0) -> bd.DataSet:
        return bd.DataSet(str(data / name), ("--subjects", str(subjects), "--seconds", "2.5",
                          "--seed", str(seed), "--confound", str(confound), "--size", "96x72",
                          "--prep-subjects", "0"))  # fmt: skip

    loaders = ("train", "val", "test")
    options = ["train_cfg.max_epochs=1"]
    for loader in loaders:
        options += [f"{loader}_dataloader.batch_size=4", f"{loader}_dataloader.num_workers=0",
                    f"{loader}_dataloader.persistent_workers=False"]  # fmt: skip
    return bd.Benchmark(
        datasets=(dataset("train", 6, 11), dataset("val", 3, 12), dataset("test", 6, 13),
                  dataset("confound_train", 6, 14, 1.0), dataset("confound_val", 3, 15, 1.0)),
        chains={"cache_a": NO_MODEL_CHAIN, "cache_b": NO_MODEL_CHAIN},
        train=str(data / "train"), val=str(data / "val"), test=str(data / "test"),
        cache="cache_a",
        methods=(
            bd.Method("two-stream", "two-stream", _with_fake_pose(tmp_path, "two-stream", pose),
                      seeds=2),
            bd.Method("temporal-only", "only temporal",
                      {"": BENCH.method("temporal-only").configs[""]}),
            bd.Method("late-fusion", "late fusion", _with_fake_pose(tmp_path, "late-fusion", pose),
                      follows="two-stream"),
        ),
        reference="two-stream",
        confound_train=str(data / "confound_train"), confound_val=str(data / "confound_val"),
        arms=(bd.Arm("both", "both", "cache_a"), bd.Arm("neither", "neither", "cache_b")),
        confounding_method="two-stream",
        arm_seeds=1,
        extra_options=tuple(options),
        resamples=200,
    )  # fmt: skip


# About 5 minutes on 2 quiet cores (eight training processes, two at a time); more when shared.
@pytest.mark.timeout(2400)
def test_a_miniature_benchmark_runs_end_to_end_and_resumes_without_rerunning(tmp_path, capsys):
    bench = _miniature(tmp_path)
    work = tmp_path / "work"
    assert bm.run_benchmark("table1", REPO_ROOT, work, bench=bench, jobs=2, workers=1) == 0
    summary = json.loads((work / "table1/summary.json").read_text())
    assert set(summary["summary"]) == {"two-stream", "temporal-only", "late-fusion"}
    chosen = summary["chosen"]["two-stream"]
    assert chosen in ("scratch", "pose-pretrained")
    assert summary["chosen"]["late-fusion"] == chosen  # follows the two-stream model's choice
    figures = summary["summary"]["two-stream"]
    assert figures["num_infants"] == 6 and figures["num_seeds"] == 2
    assert figures["seeds"] == [1, 2]  # seed 0 chose the variant: not reported
    assert figures["bootstrap"] == "seeds, then infants"
    assert figures["accuracy_ci_low"] <= figures["accuracy"] <= figures["accuracy_ci_high"]
    assert summary["summary"]["temporal-only"]["paired"]["levels"] == 2
    assert summary["summary"]["late-fusion"]["bootstrap"] == "infants (one seed)"
    report = (work / "table1/report.md").read_text()
    assert "The paper's ordering" in report and "| two-stream |" in report
    assert "## What the design builds in" in report
    assert (work / "table1/table1.png").stat().st_size > 0
    pretrained_log = next(work.glob("table1/*pose-pretrained_mini/seed0/train.log")).read_text()
    assert "pose.pth" in pretrained_log  # the RGB stream loaded the pose backbone
    run_records = sorted(work.glob("table1/*/seed*/run.json"))
    # 2 variants on seed 0, the chosen one on seeds 1 and 2, temporal, late fusion (the chosen
    # variant only)
    assert len(run_records) == 6
    assert len(list(work.glob("table1/late-fusion*/seed0/run.json"))) == 1

    assert bm.run_benchmark("confounding", REPO_ROOT, work, bench=bench, jobs=2, workers=1) == 0
    confounding = json.loads((work / "confounding/summary.json").read_text())["summary"]
    assert set(confounding) == {"both", "neither"}
    assert confounding["neither"]["num_infants"] == 6

    stamps = {path: path.stat().st_mtime_ns for path in work.rglob("run.json")}
    capsys.readouterr()
    assert bm.run_benchmark("table1", REPO_ROOT, work, bench=bench, jobs=2, workers=1) == 0
    out = capsys.readouterr().out
    assert "variant study: 3 runs, 3 done already" in out
    assert out.count("every video cached by this chain; reused") == 3  # no tool started
    assert {path: path.stat().st_mtime_ns for path in work.rglob("run.json")} == stamps


def test_a_second_benchmark_driver_of_a_folder_in_use_is_refused(tmp_path, capsys):
    import subprocess
    import sys

    work = tmp_path / "bench"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from gm_plugins.utils.locking import lock_work_dir; "
         "lock_work_dir(sys.argv[1], 'the first benchmark driver'); print('held', flush=True); "
         "sys.stdin.read()", str(work)],
        cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        assert bm.run_benchmark("table1", REPO_ROOT, work, bench=bd.BENCHMARK) == 2
        out = capsys.readouterr().out
        assert f"{work} is in use by process {holder.pid} (the first benchmark driver)" in out
        assert sorted(p.name for p in work.iterdir()) == [".gm_plugins.lock"]  # nothing else
    finally:
        holder.kill()
        holder.wait()
