"""The results store: records, keys, skipping, stale runs, budgets, reports and verification.

Most tests run the benchmark driver on a miniature experiment whose "training" is a small
script (written below) that writes what tools/train.py --test-after writes: test metrics,
per-infant predictions and validation scalars, from the seed and a few environment variables.
One test trains the tiny two-stream config for real (the backbone leaderboard's folds).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from gm_plugins.experiments import benchmark as bm
from gm_plugins.experiments import benchmark_definition as bd
from gm_plugins.experiments import benchmark_planner as bp
from gm_plugins.experiments import benchmark_runs as br
from gm_plugins.experiments import results_store as rs
from gm_plugins.utils.processes import python_command

REPO_ROOT = Path(__file__).resolve().parents[2]
NO_MODEL_CHAIN = (
    "configs/preprocess/preprocess_farneback-64_no-background-removal_no-alignment_demo.py"
)

#: The fake training: argv = work dir, seed, config. Appends to $FAKE_CALLS; fails when the
#: config's name is $FAKE_FAIL; $FAKE_FLIP flips the decisions of that many infants.
FAKE_TRAIN = """
import json, os, sys, zlib
from pathlib import Path
work, seed, config = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]).stem
with open(os.environ["FAKE_CALLS"], "a") as calls:
    calls.write(f"{config} {seed}\\n")
if os.environ.get("FAKE_FAIL") == config:
    sys.exit(3)
flip = int(os.environ.get("FAKE_FLIP", "0"))
base = zlib.crc32(f"{config}-{seed}".encode())
subjects, right = [], 0
for k in range(6):
    label = k % 3
    predicted = label if (base >> k) % 4 else (label + 1) % 3
    if k < flip:
        predicted = (predicted + 1) % 3
    scores = [0.1, 0.1, 0.1]
    scores[predicted] = 0.8
    right += predicted == label
    subjects.append(dict(subject_id=f"s{k}", label=label, predicted=predicted, scores=scores))
accuracy = right / 6
(work / "test_infants.json").write_text(json.dumps(dict(classes=["WMs", "FMs", "PR"],
                                                         subjects=subjects)))
(work / "test_metrics.json").write_text(json.dumps({"subject/accuracy": accuracy,
    "subject/mcc": accuracy - 0.2, "window/accuracy": 0.5, "checkpoint": str(work / "e.pth")}))
scalars = work / "20240101" / "vis_data"
scalars.mkdir(parents=True, exist_ok=True)
val = (base % 97) / 97
(scalars / "scalars.json").write_text(json.dumps({"subject/accuracy": val, "subject/mcc": val,
    "window/cross_entropy": 1.0, "window/accuracy": 0.5, "step": 1}))
(work / "threads.txt").write_text(os.environ.get("OMP_NUM_THREADS", "unset"))
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A miniature benchmark whose runs are the fake training, with its store and paths."""
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAIN)
    calls = tmp_path / "calls.txt"
    calls.write_text("")
    monkeypatch.setenv("FAKE_CALLS", str(calls))
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    monkeypatch.delenv("FAKE_FLIP", raising=False)

    def command(run: br.Run) -> list[str]:
        return python_command(script, run.work_dir, run.seed, run.config)

    monkeypatch.setattr(br.Run, "command", command)
    monkeypatch.setattr(bm.BenchmarkDriver, "prepare", lambda self, caches: None)
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("two-a", "two-b", "temporal"):
        (configs / f"{name}.py").write_text(f"model = dict(type='Fake', name={name!r})\n")
    checkpoint = tmp_path / "seg.pth"
    checkpoint.write_bytes(b"segmentation weights")
    chain = tmp_path / "chain.py"
    chain.write_text(
        "default_scope = 'mmaction'\n"
        "preprocess_pipeline = [dict(type='BackgroundRemoval', config='seg.py', "
        f"checkpoint={str(checkpoint)!r})]\n"
    )
    bench = bd.Benchmark(
        datasets=(bd.DataSet("d/train", ("--seed", "1")), bd.DataSet("d/test", ("--seed", "3"))),
        chains={"cache_a": str(chain), "cache_b": NO_MODEL_CHAIN},
        train="d/train", val="d/val", test="d/test", cache="cache_a",
        methods=(
            bd.Method("two-stream", "two-stream",
                      {"a": str(configs / "two-a.py"), "b": str(configs / "two-b.py")}),
            bd.Method("temporal-only", "only temporal", {"": str(configs / "temporal.py")}),
        ),
        reference="two-stream",
        confound_train="d/ctrain", confound_val="d/cval",
        arms=(bd.Arm("both", "both", "cache_a"), bd.Arm("neither", "neither", "cache_b")),
        confounding_method="two-stream",
        arm_seeds=1,
        resamples=100,
    )  # fmt: skip

    class Fake:
        pass

    fake = Fake()
    fake.bench, fake.checkpoint, fake.configs = bench, checkpoint, configs
    fake.store = rs.ResultsStore(tmp_path / "results")
    fake.work = tmp_path / "work"

    def run(name: str = "table1", **kwargs) -> int:
        kwargs.setdefault("store", fake.store)
        return bm.run_benchmark(name, REPO_ROOT, fake.work, bench=bench, jobs=2, workers=1,
                                **kwargs)  # fmt: skip

    def calls_made() -> list[str]:
        return calls.read_text().splitlines()

    def slices(monkeypatch) -> None:
        """Budgets whose clock advances 100 s per training started (real runs take ~1 s)."""

        class Budget(rs.Budget):
            def __init__(self, minutes: float) -> None:
                super().__init__(minutes, clock=lambda: 100.0 * len(calls_made()))

        monkeypatch.setattr(rs, "Budget", Budget)

    fake.run, fake.calls, fake.slices = run, calls_made, slices
    return fake


def _records(store: rs.ResultsStore, experiment: str = "table1") -> dict[str, dict]:
    return {record["run"]: record for record in store.records(experiment)}


def _key(tmp_path: Path) -> rs.RunKey:
    return rs.RunKey("table1", "two-stream/a seed 0", "c.py", "ab" * 32, {"m.pth": "cd" * 32}, 0)


# -- the record ----------------------------------------------------------------------------------


def test_a_record_round_trips_and_a_tampered_one_is_refused(tmp_path):
    store = rs.ResultsStore(tmp_path / "results")
    infants = dict(classes=["WMs", "FMs", "PR"], ids=["b", "a"], labels=[1, 0], predicted=[1, 2],
                   probabilities=[[0.1, 0.8, 0.1], [0.2, 0.3, 0.5]])  # fmt: skip
    record = rs.build_record(
        _key(tmp_path),
        seconds=12.345,
        validation=dict(accuracy=0.5, mcc=float("nan")),
        test={"subject/accuracy": 1 / 3, "subject/confusion_matrix": [[1, 0], [0, 1]]},
        infants=infants,
        start_time="2026-01-01T00:00:00+00:00",
        threads=1,
    )
    path = store.write(record)
    assert path == tmp_path / "results/table1/two-stream/a_seed_0.json"
    assert store.read("table1", "two-stream/a seed 0") == record
    assert record["seconds"] == 12.3 and record["test"]["subject/accuracy"] == 0.333333
    assert record["validation"]["mcc"] is None  # NaN is not JSON
    assert record["format"] == rs.FORMAT and record["processor"]["cpus"] >= 1
    assert store.lookup(_key(tmp_path)).status == "match"
    for field in ("git_commit", "start_time", "threads", "config_sha256", "checkpoints", "seed"):
        assert field in record
    # The instruction set and torch's kernels decide speed and last digits: the record says them.
    processor = record["processor"]
    flags = set(Path("/proc/cpuinfo").read_text().split())
    assert processor["instruction_set"] == [f for f in rs.SPEED_FLAGS if f in flags]
    assert processor["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["versions"]["torch"] == torch.__version__.split("+")[0]
    assert {"python", "gm_plugins", "numpy", "mmengine", "mmaction2"} <= set(record["versions"])

    edited = json.loads(path.read_text())
    edited["test_infants"]["probabilities"][0][1] = 0.9
    path.write_text(json.dumps(edited, indent=1))
    with pytest.raises(rs.RecordError, match="changed after it was written") as error:
        store.read("table1", "two-stream/a seed 0")
    assert str(path) in str(error.value) and "delete" in str(error.value)


def test_the_key_follows_the_config_its_overrides_and_the_chain_checkpoints(fake, tmp_path):
    config = str(fake.configs / "two-a.py")
    first = rs.config_sha256(config, ["train_dataloader.dataset.data_root=d/train"])
    assert first == rs.config_sha256(config, ["train_dataloader.dataset.data_root=d/train"])
    assert first != rs.config_sha256(config, ["train_dataloader.dataset.data_root=d/other"])
    chain = fake.bench.chains["cache_a"]
    hashes = rs.chain_checkpoints([chain])
    assert hashes == {str(fake.checkpoint): rs.file_sha256(fake.checkpoint)}
    key = rs.RunKey("table1", "r", config, first, hashes, 0)
    record = rs.build_record(key, seconds=1, validation=None, test=None, infants=None)
    assert key.differences(record) == []
    fake.checkpoint.write_bytes(b"retrained")
    now = rs.RunKey("table1", "r", config, first, rs.chain_checkpoints([chain]), 0)
    assert now.differences(record) == [f"checkpoint {fake.checkpoint} changed"]
    assert rs.RunKey("table1", "r", config, first, hashes, 1).differences(record)  # seed
    fake.checkpoint.unlink()
    with pytest.raises(FileNotFoundError, match="preprocessing models"):
        rs.chain_checkpoints([chain])
    assert rs.chain_checkpoints([chain], missing_ok=True) == {str(fake.checkpoint): None}


def test_provenance_sums_the_records_and_names_their_days_and_processors():
    xeon = dict(name="Xeon", cpus=2, torch_capability="AVX512")
    records = [
        dict(seconds=1800.0, start_time="2026-12-07T09:30:00+00:00", processor=xeon, threads=1),
        dict(seconds=1800.0, start_time="2026-12-06T23:00:00+00:00", processor=xeon, threads=1),
        dict(seconds=None, start_time=None, processor=dict(name="Epyc", cpus=16), threads=2),
    ]
    figures = rs.provenance(records)
    assert figures["records"] == 3 and figures["seconds"] == 3600.0 and figures["untimed"] == 1
    assert (figures["first_day"], figures["last_day"]) == ("2026-12-06", "2026-12-07")
    assert figures["processors"] == {"Xeon (2 cores, AVX512)": 2, "Epyc (16 cores)": 1}
    assert figures["threads"] == {"1": 2, "2": 1}
    text = rs.provenance_text(figures, unit="folds")
    assert text.startswith("Compute: 3 recorded folds, 1.0 h of wall time")
    assert "2026-12-06 to 2026-12-07" in text and "1 without a recorded time" in text
    assert rs.provenance_text(rs.provenance([])) == "Recorded runs: none yet."


def test_comparing_infants_counts_changed_decisions():
    stored = dict(ids=["a", "b"], labels=[0, 1], predicted=[0, 2],
                  probabilities=[[0.9, 0.05, 0.05], [0.1, 0.4, 0.5]])  # fmt: skip
    same = rs.compare_infants(stored, dict(stored, ids=["a", "b"]))
    assert same["decisions_changed"] == 0 and same["max_abs_probability_difference"] == 0
    changed = dict(ids=["b", "a"], labels=[1, 0], predicted=[1, 0],
                   probabilities=[[0.1, 0.6, 0.3], [0.9, 0.05, 0.05]])  # fmt: skip
    result = rs.compare_infants(stored, changed)
    assert result["decisions_changed"] == 1
    assert result["max_abs_probability_difference"] == pytest.approx(0.2)
    assert (result["stored_accuracy"], result["new_accuracy"]) == (0.5, 1.0)
    assert rs.choose_for_verify(["c", "a", "b"], 2, seed=3) == rs.choose_for_verify(
        ["a", "b", "c"], 2, seed=3
    )


# -- the benchmark with the store ------------------------------------------------------------------


def test_finished_runs_are_recorded_and_reused_from_an_empty_work_dir(fake, capsys):
    assert fake.run() == 0
    first = json.loads((fake.work / "table1/summary.json").read_text())
    records = _records(fake.store)
    chosen = first["chosen"]["two-stream"]
    assert set(records) == {"two-stream/a seed 0", "two-stream/b seed 0", "temporal-only seed 0",
                            f"two-stream/{chosen} seed 1"}  # fmt: skip
    record = records["temporal-only seed 0"]
    assert record["checkpoints"] == {str(fake.checkpoint): rs.file_sha256(fake.checkpoint)}
    assert record["test_infants"]["ids"] == [f"s{k}" for k in range(6)]
    assert record["validation"]["epoch"] == 1 and record["threads"] == 1  # one per run
    assert len(fake.calls()) == 4
    for threads in fake.work.rglob("threads.txt"):
        assert threads.read_text() == "1"  # what each training process was given

    shutil.rmtree(fake.work)  # another machine: only results/ came along
    capsys.readouterr()
    assert fake.run() == 0
    assert len(fake.calls()) == 4  # nothing trained again
    assert "from the results store" in capsys.readouterr().out
    again = json.loads((fake.work / "table1/summary.json").read_text())
    assert again["chosen"] == first["chosen"]
    for key in ("accuracy", "accuracy_ci_low", "mcc", "num_seeds", "num_infants"):
        assert again["summary"]["two-stream"][key] == pytest.approx(
            first["summary"]["two-stream"][key], abs=1e-6
        )


def test_a_stale_record_is_redone_and_replaced_only_when_the_run_finishes(fake, monkeypatch,
                                                                          capsys):  # fmt: skip
    assert fake.run() == 0
    before = {path: path.read_bytes() for path in fake.store.root.rglob("*.json")}
    fake.checkpoint.write_bytes(b"segmentation weights, retrained")  # another chain model
    monkeypatch.setenv("FAKE_FAIL", "temporal")
    capsys.readouterr()
    assert fake.run() == 1  # the temporal run fails ...
    out = capsys.readouterr().out
    assert out.count("is stale (checkpoint") == 3 and "moved to" in out
    assert len(fake.calls()) == 4 + 3
    temporal = fake.store.path("table1", "temporal-only seed 0")
    assert temporal.read_bytes() == before[temporal]  # ... and keeps its old record
    redone = fake.store.read("table1", "two-stream/a seed 0")
    assert redone["checkpoints"][str(fake.checkpoint)] == rs.file_sha256(fake.checkpoint)
    assert list(fake.work.glob("table1/two-a/seed0.stale"))  # the old work dir, set aside

    monkeypatch.delenv("FAKE_FAIL")
    assert fake.run() == 0
    assert len(fake.calls()) == 4 + 3 + 2  # the temporal run and the chosen variant's seed 1
    assert all(
        r["checkpoints"][str(fake.checkpoint)] == rs.file_sha256(fake.checkpoint)
        for r in fake.store.records("table1")
    )


def test_the_budget_launches_only_runs_that_fit(fake, tmp_path, capsys):
    bench, store = fake.bench, fake.store
    recorder = br.Recorder(store, REPO_ROOT)
    planner = bp.Planner(bench, fake.work)
    method = bench.method("two-stream")
    slow, quick = planner.table1_run(method, "a", 0), planner.table1_run(method, "b", 0)
    # Seeds already stored of the same configs: config a takes 10 minutes, b 2 seconds.
    for run, seconds in ((planner.table1_run(method, "a", 1), 600.0),
                         (planner.table1_run(method, "b", 1), 2.0)):  # fmt: skip
        key = recorder.key(run)
        store.write(rs.build_record(key, seconds=seconds, validation=None, test=None,
                                    infants=None))  # fmt: skip
    budget = rs.Budget(minutes=5)
    assert br.run_all([slow, quick], REPO_ROOT, 2, "phase", recorder, budget) == []
    assert fake.calls() == ["two-b 0"]
    assert budget.left_out == ["two-stream/a seed 0"]
    assert "1 run(s) left for a later invocation" in capsys.readouterr().out
    assert store.read("table1", quick.name)["seconds"] < 60  # recorded as it finished


def test_a_budget_stops_cleanly_and_the_next_slice_goes_on(fake, monkeypatch, capsys):
    fake.slices(monkeypatch)
    assert fake.run(budget_minutes=3.5) == 0  # 210 "s": the three runs of the variant study
    out = capsys.readouterr().out
    assert "stopped within the budget of 3.5 min" in out
    chosen = next(r for r in ("a", "b") if f"two-stream/{r} seed 1" in out.split("Remaining: ")[1])
    assert f"Remaining: two-stream/{chosen} seed 1; then the report." in out
    assert len(fake.calls()) == 3 and len(fake.store.records("table1")) == 3
    assert not (fake.work / "table1/report.md").exists()
    assert fake.run() == 0
    assert len(fake.calls()) == 4 and (fake.work / "table1/report.md").is_file()


def test_the_report_comes_from_the_records_alone_and_says_what_is_missing(
    fake, monkeypatch, capsys
):
    fake.slices(monkeypatch)
    assert fake.run(budget_minutes=3.5) == 0
    shutil.rmtree(fake.work)
    calls = len(fake.calls())
    capsys.readouterr()
    assert fake.run(report=True) == 0
    out = capsys.readouterr().out
    assert len(fake.calls()) == calls  # no training
    assert "missing from the results store" in out
    report = (fake.work / "table1/report.md").read_text()
    assert "(partial)" in report and "**Partial**" in report
    partial = json.loads((fake.work / "table1/summary.json").read_text())
    chosen = partial["chosen"]["two-stream"]
    assert partial["missing"] == [f"two-stream/{chosen} seed 1"]
    assert "two-stream" not in partial["summary"]  # seed 0 chose its variant: never reported
    assert f"two-stream/{chosen} seed 1" in report
    assert not list(fake.work.glob("table1/*/seed*"))  # the runs' files stayed in a temp dir

    assert fake.run() == 0
    full = json.loads((fake.work / "table1/summary.json").read_text())
    shutil.rmtree(fake.work)
    assert fake.run(report=True) == 0
    report = (fake.work / "table1/report.md").read_text()
    assert "partial" not in report.lower() and "| two-stream |" in report
    rebuilt = json.loads((fake.work / "table1/summary.json").read_text())
    assert rebuilt["chosen"] == full["chosen"] and "missing" not in rebuilt
    assert rebuilt["summary"]["temporal-only"]["accuracy"] == pytest.approx(
        full["summary"]["temporal-only"]["accuracy"], abs=1e-6
    )
    assert (fake.work / "table1/table1.png").stat().st_size > 0
    stored = fake.store.records("table1")
    assert rebuilt["provenance"]["records"] == len(stored)
    assert rebuilt["provenance"]["seconds"] == pytest.approx(
        sum(r["seconds"] for r in stored), abs=0.1 * len(stored)
    )
    assert f"Compute: {len(stored)} recorded runs" in report
    assert "This machine's compute" not in report  # no preparation here: the records only


def test_the_confounding_report_from_the_store(fake, capsys):
    assert fake.run("confounding") == 0
    shutil.rmtree(fake.work)
    assert fake.run("confounding", report=True) == 0
    summary = json.loads((fake.work / "confounding/summary.json").read_text())
    assert set(summary["summary"]) == {"both", "neither"} and "missing" not in summary
    paired = summary["summary"]["neither"]["paired"]
    state = "resolved" if paired["ci_high"] < 0 else "reversed" if paired["ci_low"] > 0 else None
    assert summary["claim"][state or "unresolved"] == ["neither"]
    assert summary["claim"]["holds"] == (state == "resolved")
    report = (fake.work / "confounding/report.md").read_text()
    assert "## The paper's claim" in report and "Compute: 2 recorded runs" in report
    assert {r["run"] for r in fake.store.records("confounding")} == {
        "confounding/both seed 0",
        "confounding/neither seed 0",
    }


def test_verify_reruns_stored_runs_and_flags_changed_decisions(fake, monkeypatch, capsys):
    assert fake.run() == 0
    stored = {path: path.read_bytes() for path in fake.store.root.rglob("*.json")}
    calls = len(fake.calls())
    capsys.readouterr()
    assert fake.run(verify=2, verify_seed=1) == 0
    out = capsys.readouterr().out
    assert len(fake.calls()) == calls + 2
    lines = [line for line in out.splitlines() if line.startswith("[verify]")]
    assert len(lines) == 2
    assert all("0 decision(s) changed" in line and line.endswith("OK") for line in lines)
    assert "max |Δ probability| 0.000000" in lines[0]

    monkeypatch.setenv("FAKE_FLIP", "2")  # the rerun decides two infants otherwise
    assert fake.run(verify=1, verify_seed=1) == 1
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("[verify]"))
    assert "2 decision(s) changed" in line and line.endswith("CHANGED")
    assert fake.run(verify=1, verify_seed=1, verify_tolerance=2) == 0
    assert {path: path.read_bytes() for path in fake.store.root.rglob("*.json")} == stored

    logged = fake.store.verifications("table1")  # every rerun, beside the records
    assert [e["comparison"]["decisions_changed"] for e in logged] == [0, 0, 2, 2]
    assert [e["tolerance"] for e in logged] == [0, 0, 0, 2]
    assert all(e["processor"] == rs.processor() == e["record_processor"] for e in logged)
    runs = {e["run"] for e in logged}
    assert {fake.store.read("table1", run)["record_sha256"] for run in runs} == {
        e["record_sha256"] for e in logged
    }
    assert fake.run(report=True) == 0
    report = (fake.work / "table1/report.md").read_text()
    assert "On the same processor model (" in report and ": 4 reruns of 2 runs, 4 of " in report
    summary = json.loads((fake.work / "table1/summary.json").read_text())
    same = summary["verification"]["groups"]["same processor"]
    assert same["reruns"] == 4 and same["records"] == 2 and same["decisions_changed"] == 4


def test_a_tampered_record_stops_the_benchmark_with_what_to_do(fake, capsys):
    assert fake.run() == 0
    path = fake.store.path("table1", "temporal-only seed 0")
    record = json.loads(path.read_text())
    record["test"]["subject/accuracy"] = 0.123  # not what it had
    path.write_text(json.dumps(record))
    calls = len(fake.calls())
    capsys.readouterr()
    assert fake.run() == 1
    out = capsys.readouterr().out
    assert str(path) in out and "delete" in out and "run that run again" in out
    assert len(fake.calls()) == calls


def test_the_tools_take_the_store_flags():
    from tools import run_benchmark
    from tools.analysis_tools import benchmark_backbones

    args = run_benchmark.parse_args(["table1", "--budget-minutes", "150"])
    assert args.budget_minutes == 150 and args.results_dir == REPO_ROOT / "results"
    assert run_benchmark.parse_args(["confounding", "--verify", "2"]).verify == 2
    with pytest.raises(SystemExit):
        run_benchmark.parse_args(["table1", "--report", "--verify", "1"])
    with pytest.raises(SystemExit):
        run_benchmark.parse_args(["demo", "--report"])
    args = benchmark_backbones.parse_args(["--work-dir", "w", "--report"])
    assert args.report and args.results_dir == REPO_ROOT / "results"


# -- a real training: the backbone leaderboard's folds ---------------------------------------------


@pytest.mark.slow
def test_backbone_folds_are_recorded_reused_reported_and_verified(tmp_path, capsys):
    from gm_plugins.experiments import backbone_benchmark as bb
    from gm_plugins.experiments.backbone_cost import SpeedSettings
    from tests.tools.test_benchmark_backbones import tiny_configs

    config = tiny_configs(tmp_path)[0]
    store = rs.ResultsStore(tmp_path / "results")

    def bench(work: str, **kwargs) -> bb.BackboneBenchmark:
        return bb.BackboneBenchmark([str(config)], tmp_path / work, folds=3, seed=1,
                                    speed=SpeedSettings(1, 0, 1, 1), store=store,
                                    **kwargs)  # fmt: skip

    assert bb.benchmark_backbones(bench("first", jobs=2)) == 0
    records = {r["run"]: r for r in store.records("backbones")}
    assert set(records) == {"tiny-r18/cost-and-speed",
                            *(f"tiny-r18/repeat0_fold{f}" for f in range(3))}  # fmt: skip
    fold = records["tiny-r18/repeat0_fold0"]
    assert len(fold["test_infants"]["ids"]) == 3 and fold["seed"] == 1
    assert fold["test"]["subject/accuracy"] == pytest.approx(
        json.loads((tmp_path / "first/cv/tiny-r18/repeat0_fold0/result.json").read_text())[
            "metrics"]["subject/accuracy"], abs=1e-6)  # fmt: skip
    first = (tmp_path / "first/leaderboard.csv").read_text()

    capsys.readouterr()
    assert bb.benchmark_backbones(bench("second")) == 0  # an empty work dir: nothing trained
    out = capsys.readouterr().out
    assert "3 fold runs, 3 already finished, 0 to run" in out and "measured in" not in out
    assert (tmp_path / "second/leaderboard.csv").read_text() == first

    assert bb.benchmark_backbones(bench("third", report=True)) == 0
    assert (tmp_path / "third/leaderboard.csv").read_text() == first
    third = (tmp_path / "third/leaderboard.md").read_text()
    assert "Compute: 3 recorded folds" in third
    assert "Verification: no stored folds rerun yet" in third
    assert not (tmp_path / "third/cv").exists()

    capsys.readouterr()
    assert bb.benchmark_backbones(bench("first", verify=1, verify_seed=0)) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("[verify]"))
    assert "0 decision(s) changed" in line, line
    (entry,) = store.verifications("backbones")
    assert entry["run"] in records and entry["comparison"]["decisions_changed"] == 0
    assert bb.benchmark_backbones(bench("fourth", report=True)) == 0
    fourth = (tmp_path / "fourth/leaderboard.md").read_text()
    assert ": 1 rerun of 1 fold, 0 of 3 test decisions changed" in fourth


# -- the benchmark without the store: run.json says what a run ran under ----------------------


def test_run_json_holds_the_key_caches_threads_and_machine_of_its_run(fake):
    assert fake.run(store=None) == 0
    run_json = next(fake.work.glob("table1/temporal/seed0/run.json"))
    done = json.loads(run_json.read_text())
    assert done["key"]["checkpoints"] == {str(fake.checkpoint): rs.file_sha256(fake.checkpoint)}
    assert len(done["key"]["config_sha256"]) == 64 and done["key"]["seed"] == 0
    assert set(done["caches"]) == {"d/train/cache_a", "d/val/cache_a", "d/test/cache_a"}
    assert done["threads"] == 1 and done["processor"] == rs.processor()
    assert done["versions"] == rs.package_versions()
    started = json.loads((run_json.parent / "store_key.json").read_text())
    assert started == done["key"]


def test_a_resumed_benchmark_redoes_runs_of_another_key_and_says_so(fake, capsys):
    assert fake.run(store=None) == 0
    assert len(fake.calls()) == 4
    capsys.readouterr()
    assert fake.run(store=None) == 0  # the same key: nothing again
    assert len(fake.calls()) == 4 and "3 done already" in capsys.readouterr().out
    fake.checkpoint.write_bytes(b"segmentation weights, retrained")
    assert fake.run(store=None) == 0
    out = capsys.readouterr().out
    assert out.count("ran under another key: moved to") == 4 and len(fake.calls()) == 8
    temporal = next(fake.work.glob("table1/temporal/seed0"))
    assert json.loads((temporal / "run.json").read_text())["key"]["checkpoints"] == {
        str(fake.checkpoint): rs.file_sha256(fake.checkpoint)
    }
    assert (temporal.parent / "seed0.stale").is_dir()  # kept for inspection


def test_a_work_dir_that_does_not_say_its_key_is_not_mixed_in(fake, capsys):
    assert fake.run(store=None) == 0
    temporal = next(fake.work.glob("table1/temporal/seed0"))
    (temporal / "store_key.json").unlink()  # as a run of an older version left it
    done = json.loads((temporal / "run.json").read_text())
    del done["key"]
    (temporal / "run.json").write_text(json.dumps(done))
    capsys.readouterr()
    assert fake.run(store=None) == 0
    assert "seed0 ran under no recorded key: moved to" in capsys.readouterr().out
    assert fake.calls().count("temporal 0") == 2


def test_the_committed_records_still_read():
    records = rs.ResultsStore(REPO_ROOT / "results").records()
    assert records and all(record["format"] == rs.FORMAT for record in records)


def entry_for(record: dict, changed: int, infants: int, largest: float, **processor) -> dict:
    comparison = dict(infants=infants, max_abs_probability_difference=largest,
                      decisions_changed=changed, stored_accuracy=0.5, new_accuracy=0.5)  # fmt: skip
    entry = rs.verification_entry(record["experiment"], record["run"], record, comparison, 0)
    if processor:  # as if rerun elsewhere
        entry["processor"] = {**entry["processor"], **processor}
        entry["entry_sha256"] = rs.entry_digest(entry)
    return entry


def test_the_verification_log_keeps_every_rerun_and_refuses_a_changed_line(tmp_path):
    store = rs.ResultsStore(tmp_path / "results")
    key = rs.RunKey("table1", "table1/a seed 0", "a.py", "f" * 64, {}, 0)
    first = rs.build_record(key, seconds=1.0, validation=None, test={}, infants=None)
    other = rs.build_record(dataclasses.replace(key, run="table1/b seed 0"), seconds=2.0,
                            validation=None, test={}, infants=None)  # fmt: skip
    for record in (first, other):
        store.write(record)
    store.log_verification(entry_for(first, 0, 300, 0.0))
    store.log_verification(entry_for(first, 3, 300, 0.25, name="Another CPU"))
    store.log_verification(entry_for(other, 9, 300, 0.9))  # a record the table does not use
    assert [len(store.records("table1")), len(store.verifications("table1"))] == [2, 3]

    summary = rs.verification_summary(store.verifications("table1"), [first])
    same, elsewhere = summary["groups"]["same processor"], summary["groups"]["other processor"]
    assert (same["reruns"], same["decisions_changed"], same["infants"]) == (1, 0, 300)
    assert (elsewhere["reruns"], elsewhere["records"], elsewhere["decisions_changed"]) == (1, 1, 3)
    assert elsewhere["max_abs_probability_difference"] == 0.25
    assert elsewhere["processors"][0].startswith("Another CPU (")
    text = rs.verification_text(summary)
    assert "On the same processor model (" in text and "1 rerun of 1 run, 0 of 300 test" in text
    assert "On the other processor model (Another CPU" in text and "3 of 300" in text
    assert rs.verification_text(rs.verification_summary([], [first])).startswith(
        "Verification: no stored runs rerun yet"
    )

    replaced = {**first, "seconds": 2.0}  # a record run again: its old reruns no longer count
    replaced["record_sha256"] = rs.record_digest(replaced)
    assert rs.verification_summary(store.verifications("table1"), [replaced])["groups"] == {}

    log = store.root / "table1" / rs.VERIFICATIONS_FILE
    lines = log.read_text().splitlines()
    lines[1] = lines[1].replace('"decisions_changed":3', '"decisions_changed":0')
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(rs.RecordError, match=f"{log}, line 2"):
        store.verifications("table1")
    forged = dict(entry_for(first, 0, 300, 0.0), entry_sha256="0" * 64)
    with pytest.raises(rs.RecordError, match="refusing"):
        store.log_verification(forged)
