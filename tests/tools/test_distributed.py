"""Two CPU processes over gloo: tools/dist_train.sh and tools/dist_test.sh under torchrun."""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.datasets.fake_cache import write_fake_dataset
from tests.runner_configs import REPO_ROOT
from tests.runner_configs import tiny_demo_config as tiny_config


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def run(*command: str) -> subprocess.CompletedProcess:
    # The tiny config and the fake dataset import tests.*: the repository root goes on the path.
    env = dict(os.environ, PORT=free_port(), PYTHONPATH=str(REPO_ROOT))
    env.pop("OMP_NUM_THREADS", None)
    return subprocess.run(
        list(command), cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
        env=env,
    )  # fmt: skip


def window_keys(predictions: list[dict]) -> list[tuple]:
    return [(p["subject_id"], p["window_index"]) for p in predictions]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A tiny config trained for one epoch by two processes."""
    root = tmp_path_factory.mktemp("dist")
    # 4 infants per class: 3 test infants, whose 15 windows do not split evenly over 2 ranks.
    data, cache = write_fake_dataset(root / "fake", per_class=4)
    config = tiny_config(root / "tiny.py", data, cache)
    work_dir = root / "work"
    train = run("bash", "tools/dist_train.sh", str(config), "2", "--work-dir", str(work_dir))
    return dict(root=root, config=config, work_dir=work_dir, train=train)


@pytest.mark.slow
def test_two_processes_train_and_rank_zero_writes_the_checkpoints(trained):
    train = trained["train"]
    assert train.returncode == 0, train.stderr[-3000:]
    log = train.stdout + train.stderr
    assert "Distributed training: True" in log
    assert "[rank1]" not in log  # no rank failed
    work_dir = trained["work_dir"]
    assert (work_dir / "epoch_1.pth").is_file()
    assert (work_dir / "training_finished").is_file()
    # One run log directory: rank 1 writes no logs or checkpoints of its own.
    assert len([p for p in work_dir.iterdir() if p.is_dir()]) == 1
    # 6 training infants x 5 windows = 30 windows: 15 per rank, 4 batches of 4 (8 on one rank).
    assert "Epoch(train) [1][4/4]" in log


@pytest.mark.slow
def test_two_process_test_equals_a_one_process_test(trained):
    assert trained["train"].returncode == 0, trained["train"].stderr[-3000:]
    root, config, work_dir = trained["root"], trained["config"], trained["work_dir"]
    checkpoint = str(work_dir / "epoch_1.pth")
    outputs = {}
    for processes in ("1", "2"):
        metrics, dump = root / f"metrics{processes}.json", root / f"predictions{processes}.pkl"
        tool = (
            ["bash", "tools/dist_test.sh", str(config), checkpoint, processes]
            if processes == "2"
            else [sys.executable, "tools/test.py", str(config), checkpoint]
        )
        result = run(*tool, "--work-dir", str(root / f"test{processes}"),
                     "--metrics-out", str(metrics), "--dump", str(dump))  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[processes] = (json.loads(metrics.read_text()), pickle.loads(dump.read_bytes()))
    (metrics1, predictions1), (metrics2, predictions2) = outputs["1"], outputs["2"]
    # The gathered predictions are the same windows in the same order, each once, although
    # the sampler padded rank 1 with a repeated window.
    assert len(predictions1) == 15
    assert window_keys(predictions2) == window_keys(predictions1)
    for one, two in zip(predictions1, predictions2, strict=True):
        np.testing.assert_allclose(np.asarray(two["pred_score"]), np.asarray(one["pred_score"]),
                                   atol=1e-6)  # fmt: skip
    # ... so the infant-level metrics (3 infants, each counted once) are unchanged.
    assert metrics2["subject/num_subjects"] == metrics1["subject/num_subjects"] == 3
    assert metrics2["window/num_windows"] == 15
    assert metrics2.keys() == metrics1.keys()
    for name, value in metrics1.items():
        if isinstance(value, float):
            assert metrics2[name] == pytest.approx(value, abs=1e-6), name
        else:
            assert metrics2[name] == value, name


def test_sync_bn_on_cpus_is_refused_with_the_fix():
    from mmengine.config import Config

    from gm_plugins.engine.runner import use_cpu_ddp_wrapper

    cfg = Config(dict(launcher="pytorch", sync_bn="torch"))
    with pytest.raises(ValueError, match="sync_bn=None"):
        use_cpu_ddp_wrapper(cfg)


def test_cpu_ddp_wrapper_has_no_device_ids_and_keeps_user_options():
    from mmengine.config import Config

    from gm_plugins.engine.runner import use_cpu_ddp_wrapper

    cfg = Config(dict(launcher="pytorch", find_unused_parameters=True))
    use_cpu_ddp_wrapper(cfg)
    assert cfg.model_wrapper_cfg.device_ids is None
    assert cfg.model_wrapper_cfg.find_unused_parameters is True
    single = Config(dict(launcher="none"))
    use_cpu_ddp_wrapper(single)
    assert "model_wrapper_cfg" not in single


FAKE_SRUN = """#!{python}
# Stands in for Slurm's srun on one machine: starts --ntasks copies of the command with the
# variables Slurm gives each task, and records its own arguments.
import os, subprocess, sys
args = sys.argv[1:]
with open({record!r}, "w") as record:
    record.write(" ".join(args))
tasks, index = 1, 0
while args[index].startswith("-"):
    if args[index] == "-p":
        index += 1
    elif args[index].startswith("--ntasks="):
        tasks = int(args[index].split("=")[1])
    index += 1
command = args[index:]
processes = [
    subprocess.Popen(command, env=dict(os.environ, SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank),
                     SLURM_NTASKS=str(tasks), SLURM_NODELIST="localhost",
                     MASTER_ADDR="127.0.0.1", MASTER_PORT={port!r}))
    for rank in range(tasks)
]
sys.exit(max(process.wait() for process in processes))
"""


@pytest.mark.slow
def test_slurm_test_script_runs_two_cpu_tasks_with_the_slurm_launcher(trained, tmp_path):
    assert trained["train"].returncode == 0, trained["train"].stderr[-3000:]
    bin_dir, record = tmp_path / "bin", tmp_path / "srun_args.txt"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text(FAKE_SRUN.format(python=sys.executable, record=str(record), port=free_port()))
    srun.chmod(0o755)
    metrics = tmp_path / "metrics.json"
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", GPUS="2",
               GPUS_PER_NODE="0", CPUS_PER_TASK="1", PYTHON=sys.executable)  # fmt: skip
    result = subprocess.run(
        ["bash", "tools/slurm_test.sh", "cpu", "gm-test", str(trained["config"]),
         str(trained["work_dir"] / "epoch_1.pth"), "--work-dir", str(tmp_path / "test"),
         "--metrics-out", str(metrics)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    srun_args = record.read_text()
    assert "--ntasks=2" in srun_args and "--gres" not in srun_args  # CPU nodes: no GPUs asked
    assert srun_args.endswith("--launcher slurm")
    tested = json.loads(metrics.read_text())
    assert tested["subject/num_subjects"] == 3 and tested["window/num_windows"] == 15
