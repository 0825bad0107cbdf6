"""The synthetic benchmark's definition (:data:`BENCHMARK`): its datasets, made with fixed
seeds and split by infant once, the evaluation-grade preprocessing chain, the methods with their
seeds and the RGB-stream variants compared on validation infants (see
:mod:`gm_plugins.experiments.benchmark`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

BENCH = "configs/benchmark"
PREPROCESS = "configs/preprocess"
#: Variants of the RGB stream (see configs/benchmark/_base_/rgb-r18c32.py), in report order.
RGB_VARIANTS = ("scratch", "frozen-random", "pose-pretrained", "pose-pretrained-frozen")


@dataclass(frozen=True)
class DataSet:
    """A dataset folder and its tools/data/make_synthetic_dataset.py arguments (besides --out)."""

    root: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Method:
    """One row of Table 1.

    Attributes:
        key: short name (run folders, the reference).
        title: row title.
        configs: variant name -> classifier config ('' for a method without variants).
        seeds: seeds of the chosen variant (the others run seed 0 only).
        follows: take the variant chosen for this other method instead of choosing.
        cost: training time relative to the two-stream model (for the ETA only).
    """

    key: str
    title: str
    configs: Mapping[str, str]
    seeds: int = 1
    follows: str | None = None
    cost: float = 1.0


@dataclass(frozen=True)
class Arm:
    """One row of the confounding experiment: the cache its videos come from."""

    key: str
    title: str
    cache: str


@dataclass(frozen=True)
class Benchmark:
    """Everything the benchmark makes and runs (paths relative to the repository root).

    Attributes:
        datasets: every dataset made.
        chains: cache folder name -> preprocessing config.
        train, val, test: dataset roots of Table 1's split.
        cache: Table 1's cache name.
        methods: Table 1's rows; ``reference`` is the paper's model.
        confound_train, confound_val: roots of the confounding experiment's training infants
            (tested on ``test``); ``arms`` its rows, ``confounding_method`` the model trained.
        extra_options: ``--cfg-options`` added to every run (the miniature's short schedule).
        resamples: bootstrap resamples.
    """

    datasets: tuple[DataSet, ...]
    chains: Mapping[str, str]
    train: str
    val: str
    test: str
    cache: str
    methods: tuple[Method, ...]
    reference: str
    confound_train: str
    confound_val: str
    arms: tuple[Arm, ...]
    confounding_method: str
    extra_options: tuple[str, ...] = ()
    resamples: int = 10000

    def method(self, key: str) -> Method:
        return next(method for method in self.methods if method.key == key)


def _variants(family: str) -> dict[str, str]:
    return {variant: f"{BENCH}/{family}_rgb-{variant}_bench.py" for variant in RGB_VARIANTS}


def _dataset(root: str, subjects: int, seed: int, confound: float = 0.0) -> DataSet:
    args = (
        "--subjects",
        str(subjects),
        "--seconds",
        "10",
        "--seed",
        str(seed),
        "--confound",
        str(confound),
        "--prep-subjects",
        "0",
    )
    return DataSet(root, args)


#: The benchmark. The preprocessing models train on other infants (data/gm_preprocessing and
#: the extra infants of data/gm_synthetic, seed 0; `make preprocessing`).
BENCHMARK = Benchmark(
    datasets=(
        _dataset("data/gm_bench/train", 120, 101),
        _dataset("data/gm_bench/val", 60, 102),
        _dataset("data/gm_bench/test", 300, 103),
        _dataset("data/gm_bench/confound_train", 120, 104, confound=1.0),
        _dataset("data/gm_bench/confound_val", 60, 105, confound=1.0),
    ),
    chains={
        "cache_eval64": f"{PREPROCESS}/preprocess_unet-c16-seg_res18-192-pose_farneback-k30-"
        "s3.75-64_benchmark.py",
        "cache_eval64_no-bg": f"{PREPROCESS}/preprocess_unet-c16-seg_res18-192-pose_farneback-"
        "k30-s3.75-64_no-background-removal_benchmark.py",
        "cache_eval64_no-align": f"{PREPROCESS}/preprocess_unet-c16-seg_farneback-64_"
        "no-alignment_benchmark.py",
        "cache_none64": f"{PREPROCESS}/preprocess_farneback-64_no-background-removal_"
        "no-alignment_demo.py",
    },
    train="data/gm_bench/train",
    val="data/gm_bench/val",
    test="data/gm_bench/test",
    cache="cache_eval64",
    methods=(
        Method(
            "two-stream",
            "two-stream, concat-conv fusion (the paper)",
            _variants("two-stream"),
            seeds=3,
        ),
        Method(
            "spatial-only",
            "only spatial (one RGB frame)",
            _variants("spatial-only"),
            seeds=3,
            cost=0.5,
        ),
        Method(
            "temporal-only",
            "only temporal (flow)",
            {"": f"{BENCH}/temporal-only_bench.py"},
            seeds=3,
            cost=0.6,
        ),
        Method(
            "late-fusion", "two-stream, late fusion", _variants("late-fusion"), follows="two-stream"
        ),
        Method("c3d", "C3D (quarter width, 6 frames)", {"": f"{BENCH}/c3d_bench.py"}),
        Method("tsn", "TSN, RGB (3 frames)", _variants("tsn"), cost=1.2),
        Method("cnn-lstm", "CNN + LSTM (3 frames)", _variants("cnn-lstm"), cost=1.2),
    ),
    reference="two-stream",
    confound_train="data/gm_bench/confound_train",
    confound_val="data/gm_bench/confound_val",
    arms=(
        Arm("both", "background removal + body alignment (the paper)", "cache_eval64"),
        Arm("alignment-only", "body alignment only (background kept)", "cache_eval64_no-bg"),
        Arm(
            "background-removal-only",
            "background removal only (whole frame)",
            "cache_eval64_no-align",
        ),
        Arm("neither", "neither (whole frame, background kept)", "cache_none64"),
    ),
    confounding_method="two-stream",
)
