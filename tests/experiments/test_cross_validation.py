"""gm_plugins.experiments.cross_validation: each fold's config file, pruning, refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mmengine.config import Config

from gm_plugins.evaluation import cross_validation as cv
from gm_plugins.experiments.cross_validation import (
    CrossValidation,
    FoldRunner,
    cross_validate,
    load_configs,
    make_folds,
    prune_checkpoints,
)
from tests.datasets.fake_cache import write_fake_dataset
from tests.runner_configs import tiny_demo_config


def test_each_fold_trains_from_a_dumped_config_with_its_overrides(tmp_path):
    data, cache = write_fake_dataset(tmp_path / "fake", per_class=3)
    config = str(tiny_demo_config(tmp_path / "tiny.py", data, cache))
    job = CrossValidation(
        [config], tmp_path / "work", folds=3, cfg_options={"train_cfg.max_epochs": 7}
    )
    configs = load_configs(job)
    folds_files = make_folds(job, configs)
    run = cv.plan_runs(job.configs, 3, 1)[1]
    path = FoldRunner(job, configs, folds_files).write_fold_config(run)
    assert path == tmp_path / "work" / "tiny" / "repeat0_fold1.py"  # beside its work dir
    dumped, original = Config.fromfile(path), Config.fromfile(config)
    assert dumped.train_cfg.max_epochs == 7
    for loader, split in (("train", "train"), ("val", "val"), ("test", "test")):
        dataset = dumped[f"{loader}_dataloader"].dataset
        assert (dataset.split, dataset.test_fold, dataset.val_fold) == (split, 1, 2)
        assert dataset.folds_file == str(folds_files[0]) and dataset.num_folds == 3
    assert dumped.model == original.model and dumped.default_scope == "mmaction"
    assert configs[config].train_cfg.max_epochs == 7  # the loaded config is left as it was
    assert "folds_file" not in configs[config].train_dataloader.dataset


def test_pruning_keeps_the_tested_checkpoint(tmp_path):
    for name in ("epoch_1.pth", "epoch_2.pth", "best_acc_epoch_1.pth"):
        (tmp_path / name).write_bytes(b"x")
    prune_checkpoints(tmp_path, tmp_path / "best_acc_epoch_1.pth", "tested")
    assert [p.name for p in tmp_path.glob("*.pth")] == ["best_acc_epoch_1.pth"]
    prune_checkpoints(tmp_path, tmp_path / "best_acc_epoch_1.pth", "all")
    assert (tmp_path / "best_acc_epoch_1.pth").is_file()
    prune_checkpoints(tmp_path, Path("elsewhere.pth"), "none")
    assert not list(tmp_path.glob("*.pth"))


def test_fold_threads_follow_the_callers_setting(tmp_path, monkeypatch):
    """A fold record reports the threads its child really used: the caller's setting wins."""
    data, cache = write_fake_dataset(tmp_path / "fake", per_class=3)
    config = str(tiny_demo_config(tmp_path / "tiny.py", data, cache))
    job = CrossValidation([config], tmp_path / "work", folds=3, jobs=1)
    configs = load_configs(job)
    folds_files = make_folds(job, configs)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert FoldRunner(job, configs, folds_files).threads == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert FoldRunner(job, configs, folds_files).threads == 4


def test_a_second_cross_validation_of_a_folder_in_use_is_refused(tmp_path, capsys):
    work = tmp_path / "cv"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from gm_plugins.utils.locking import lock_work_dir; "
         "lock_work_dir(sys.argv[1], 'the first cross-validation'); print('held', flush=True); "
         "sys.stdin.read()", str(work)],
        cwd=Path(__file__).resolve().parents[2], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        config = tmp_path / "c1.py"
        config.write_text("model = dict(type='Unread')\n")  # refused before it is read
        assert cross_validate(CrossValidation(configs=[str(config)], work_dir=work)) == 2
        error = capsys.readouterr().err
        assert f"{work} is in use by process {holder.pid} (the first cross-validation)" in error
        assert not (work / "folds").exists()  # nothing written
    finally:
        holder.kill()
        holder.wait()
