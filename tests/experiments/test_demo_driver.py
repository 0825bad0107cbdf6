"""The demo experiment's driver, run against stand-in tools: the commands a user would type, the
work dir layout (markers, logs, metrics, figures) and a rerun that reuses finished stages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

from gm_plugins.experiments import shipped
from gm_plugins.experiments.shipped import (
    CHAINS,
    DATASETS,
    DEMO_CLASSIFIER,
    Options,
    run_experiment,
)
from gm_plugins.utils.zoo import zoo_model_of_weights

REPO_ROOT = Path(__file__).resolve().parents[2]
KEYS = ("accuracy", "precision", "recall", "f1", "mcc", "kappa", "roc_auc")
STAND_IN = """
import json, pathlib, sys
root = pathlib.Path(__file__).resolve().parent
name, args = NAMES[sys.argv[2]], sys.argv[3:]  # stand_in.py -m MODULE ARGS
if (root / f"fail_{name}").exists():
    print("bad video"); raise SystemExit(1)
with open(root / "calls.jsonl", "a") as log:
    log.write(json.dumps([name, args]) + "\\n")
option = lambda flag: args[args.index(flag) + 1] if flag in args else None
if name == "train.py" and option("--work-dir"):
    work = pathlib.Path(option("--work-dir"))
    (work / "run" / "vis_data").mkdir(parents=True, exist_ok=True)
    (work / "best_window_cross_entropy_epoch_1.pth").write_text("weights")
    (work / "run" / "vis_data" / "scalars.json").write_text(
        json.dumps(dict(loss=1.0, step=1, epoch=1)) + "\\n"
        + json.dumps({"subject/accuracy": 0.5, "step": 1}) + "\\n")
if name == "make_synthetic_dataset.py":
    data = root / option("--out")
    data.mkdir(parents=True, exist_ok=True)
    label = lambda i: ("WMs", "FMs", "PR")[i % 3]
    rows = "".join(f"s{i:04d},{label(i)},videos/s{i:04d}.mp4\\n" for i in range(12))
    (data / "subjects.csv").write_text("subject_id,label,video\\n" + rows)
if name == "test.py":
    metrics = {"subject/num_subjects": 9, "window/num_windows": 36,
               "subject/confusion_matrix": [[3, 0, 0], [0, 2, 1], [0, 0, 3]]}
    for key in KEYS:
        metrics["subject/" + key], metrics["window/" + key] = 0.875, 0.625
    pathlib.Path(option("--metrics-out")).write_text(json.dumps(metrics))
"""


#: The entry points the demo runs, by the name of the tool that wraps each.
NAMES = {
    "gm_plugins.datasets.synthetic.make_dataset": "make_synthetic_dataset.py",
    "gm_plugins.engine.train": "train.py",
    "gm_plugins.preprocess.preprocess_videos": "preprocess_videos.py",
    "gm_plugins.engine.test": "test.py",
    "gm_plugins.deploy.export_bundle": "export_bundle.py",
    "gm_plugins.apis.infer": "infer.py",
}


@pytest.fixture(autouse=True)
def stand_in_commands(monkeypatch):
    """Every ``python -m MODULE ARGS`` of the driver runs the stand-in in the repository it
    runs in (its working directory) instead, which logs the call."""

    def command(module: str, *args: object) -> list[str]:
        return [sys.executable, "stand_in.py", "-m", module, *map(str, args)]

    monkeypatch.setattr(shipped, "module_command", command)


def stand_in_repository(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir(parents=True)
    for shared in ("configs", "zoo", "model-index.yml"):
        (root / shared).symlink_to(REPO_ROOT / shared)
    (root / "stand_in.py").write_text(f"KEYS = {KEYS!r}\nNAMES = {NAMES!r}\n" + STAND_IN)
    return root


def calls(root: Path) -> list[list]:
    return [json.loads(line) for line in (root / "calls.jsonl").read_text().splitlines()]


def test_the_demo_runs_each_stage_once_and_writes_the_demo_layout(tmp_path, capsys):
    root = stand_in_repository(tmp_path)
    assert run_experiment("demo", root, Options(work_dir=Path("work_dirs/demo"), workers=3)) == 0
    work = root / "work_dirs" / "demo"
    chain = CHAINS["cache_demo"]
    made = calls(root)
    data_args = ["--out", "data/gm_synthetic", *DATASETS["data/gm_synthetic"], "--workers", "3"]
    assert made[0] == ["make_synthetic_dataset.py", data_args]
    # the segmentation and pose models come from the zoo: nothing trains them
    cache = "data/gm_synthetic/cache_demo"
    preprocess_args = [chain, "--data-root", "data/gm_synthetic", "--out", cache, "--workers", "3"]
    assert made[1] == ["preprocess_videos.py", preprocess_args]
    classifier_dir = str(work / "two_stream")
    assert made[2] == ["train.py", [DEMO_CLASSIFIER, "--work-dir", classifier_dir, "--resume"]]
    checkpoint = str(work / "two_stream" / "best_window_cross_entropy_epoch_1.pth")
    test_args = [DEMO_CLASSIFIER, checkpoint, "--work-dir", str(work / "test"),
                 "--metrics-out", str(work / "test_metrics.json")]  # fmt: skip
    assert made[3] == ["test.py", test_args]
    bundle = str(work / "bundle")
    assert made[4] == ["export_bundle.py", [DEMO_CLASSIFIER, checkpoint, "--out", bundle,
                                             "--overwrite"]]  # fmt: skip
    # two held-out (test-fold) infants of different classes, from the dataset's subjects.csv
    videos = made[5][1][:2]
    assert made[5][1][2:] == ["--bundle", bundle, "--out", str(work / "infer")]
    assert all(v.startswith(str(root / "data/gm_synthetic/videos/")) for v in videos)
    assert len(set(videos)) == 2
    stages = ("data", "preprocess", "classifier", "test", "bundle", "infer")
    markers = sorted(p.name for p in (work / "stages").iterdir())
    assert markers == sorted(f"{stage}.done" for stage in stages)
    assert (work / "confusion_matrix.png").is_file() and (work / "training_curve.png").is_file()
    out = capsys.readouterr().out
    for title in ("1/6 synthetic infants",
                  "2/6 preprocessing: background removal, alignment, optical flow",
                  "3/6 two-stream classifier", "4/6 test on held-out infants",
                  "5/6 model bundle", "6/6 classify two held-out infants' videos"):  # fmt: skip
        assert f"[{title}] $ {sys.executable} stand_in.py -m gm_plugins." in out
    table = [line for line in out.splitlines() if line.startswith("| accuracy")]
    cells = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert cells == ["accuracy", "0.875", "0.625"]

    # A second run reuses every stage but the test, which it always repeats.
    assert run_experiment("demo", root, Options(work_dir=work, workers=3)) == 0
    assert [name for name, _ in calls(root)[6:]] == ["test.py", "export_bundle.py", "infer.py"]
    assert out.count("reusing it") == 0 and "reusing it" in capsys.readouterr().out


def test_retraining_trains_the_zoo_models_and_preprocesses_with_them(tmp_path, capsys):
    root = stand_in_repository(tmp_path)
    work = root / "work_dirs" / "demo-retrained"
    options = Options(work_dir=work, workers=3, retrain=True)
    assert run_experiment("demo", root, options) == 0
    made = calls(root)
    zoo_chain = Config.fromfile(REPO_ROOT / CHAINS["cache_demo"])
    seg = zoo_model_of_weights(zoo_chain.seg_checkpoint, REPO_ROOT)
    pose = zoo_model_of_weights(zoo_chain.pose_checkpoint, REPO_ROOT)
    assert sorted(made[1:3]) == [["train.py", [seg.config]], ["train.py", [pose.config]]]
    # the chain the caches are made with loads the retrained checkpoints, not the zoo's
    derived = work / "chains" / "cache_demo.py"
    steps = {s["type"]: s for s in Config.fromfile(derived).preprocess_pipeline}
    assert steps["BackgroundRemoval"]["checkpoint"] == seg.metadata["Training Checkpoint"]
    assert steps["PoseAlignment"]["checkpoint"] == pose.metadata["Training Checkpoint"]
    for step in ("BackgroundRemoval", "PoseAlignment"):
        assert Path(steps[step]["checkpoint"]).parts[0] == "work_dirs"
    cache = "data/gm_synthetic/cache_demo-retrained"
    assert made[3] == ["preprocess_videos.py", [str(derived), "--data-root", "data/gm_synthetic",
                                                "--out", cache, "--workers", "3"]]  # fmt: skip
    # the classifier reads that cache and its bundle ships the retrained chain
    overrides = [f"{loader}_dataloader.dataset.cache_root={cache}"
                 for loader in ("train", "val", "test")]  # fmt: skip
    assert made[4][1][-4:] == ["--cfg-options", *overrides]
    assert made[5][1][-4:] == ["--cfg-options", *overrides]
    assert made[6][1][-2:] == ["--preprocess-config", str(derived)]
    assert "8/8 classify two held-out infants' videos" in capsys.readouterr().out


def test_a_failed_stage_is_named_and_leaves_no_marker(tmp_path, capsys):
    root = stand_in_repository(tmp_path)
    (root / "fail_preprocess_videos.py").touch()
    assert run_experiment("demo", root, Options(work_dir=tmp_path / "w")) == 1
    error = capsys.readouterr().err
    assert "stage '2/6 preprocessing: background removal, alignment, optical flow' failed" in error
    assert "Fix it and run `make demo` again: finished steps are reused." in error
    assert not (tmp_path / "w" / "stages" / "preprocess.done").exists()
    assert (tmp_path / "w" / "stages" / "data.done").exists()
