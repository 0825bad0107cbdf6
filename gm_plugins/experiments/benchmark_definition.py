"""The synthetic benchmark's definition (:data:`BENCHMARK`): its datasets, made with fixed
seeds and split by infant once, the evaluation-grade preprocessing chain, the methods with their
seeds and the RGB-stream variants compared on validation infants (see
:mod:`gm_plugins.experiments.benchmark`).

Seeds: a method that chooses among RGB-stream variants trains every variant with
:data:`CHOOSING_SEED` (0), keeps the one with the best validation figures, and reports that
variant on seeds 1..``seeds``, never on the seed that chose it (its test figures would carry the
choice's optimism). Every other method (one config, or a variant chosen by another method)
reports seeds 0..``seeds`` - 1."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

BENCH = "configs/benchmark"
#: The span of the flow stream's window: 6 flow fields on the caches' 6 fps timeline.
FLOW_SPAN = "1 s"
PREPROCESS = "configs/preprocess"
#: Variants of the RGB stream (see configs/benchmark/_base_/rgb-r18c32.py), in report order.
RGB_VARIANTS = ("scratch", "frozen-random", "pose-pretrained", "pose-pretrained-frozen")
#: The seed that trains every variant of a method that chooses among them (never reported).
CHOOSING_SEED = 0
#: Variants of the RGB stream that start from no trained weights, as every stream of "only
#: temporal" and C3D does (the pretraining control compares these).
UNPRETRAINED_VARIANTS = ("scratch", "frozen-random")


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
        seeds: how many seeds are reported (see the module's docstring for which).
        follows: take the variant chosen for this other method instead of choosing.
        cost: training time relative to the two-stream model (for the ETA only).
        sees: what one window shows the model, with its time span (for the report).
    """

    key: str
    title: str
    configs: Mapping[str, str]
    seeds: int = 1
    follows: str | None = None
    cost: float = 1.0
    sees: str = ""

    @property
    def chooses(self) -> bool:
        """Whether the method chooses its own variant on validation infants."""
        return len(self.configs) > 1 and self.follows is None

    @property
    def reported_seeds(self) -> tuple[int, ...]:
        """The seeds of the method's row: never the seed that chose its variant."""
        first = CHOOSING_SEED + 1 if self.chooses else 0
        return tuple(range(first, first + self.seeds))


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
        ordering: the methods the paper's model is claimed to be above (the ordering claim).
        arm_seeds: seeds of every arm of the confounding experiment (0..arm_seeds - 1; the
            arms train the variant chosen in Table 1, so none of them chose it).
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
    ordering: tuple[str, ...] = ("spatial-only", "temporal-only", "c3d", "cnn-lstm")
    arm_seeds: int = 3
    extra_options: tuple[str, ...] = ()
    resamples: int = 10000

    def method(self, key: str) -> Method:
        return next(method for method in self.methods if method.key == key)

    @property
    def arm_seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.arm_seeds))


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
            sees=f"1 RGB frame + 6 flow fields ({FLOW_SPAN})",
        ),
        Method(
            "spatial-only",
            "only spatial (one RGB frame)",
            _variants("spatial-only"),
            seeds=3,
            cost=0.5,
            sees="1 RGB frame (a still)",
        ),
        Method(
            "temporal-only",
            "only temporal (flow)",
            {"": f"{BENCH}/temporal-only_bench.py"},
            seeds=3,
            cost=0.6,
            sees=f"6 flow fields ({FLOW_SPAN})",
        ),
        Method(
            "late-fusion",
            "two-stream, late fusion",
            _variants("late-fusion"),
            follows="two-stream",
            sees=f"1 RGB frame + 6 flow fields ({FLOW_SPAN})",
        ),
        Method(
            "c3d",
            "C3D (quarter width, 6 frames)",
            {"": f"{BENCH}/c3d_bench.py"},
            seeds=3,
            sees="6 RGB frames (1 s)",
        ),
        Method(
            "tsn", "TSN, RGB (3 frames)", _variants("tsn"), cost=1.2, sees="3 RGB frames (0.5 s)"
        ),
        Method(
            "cnn-lstm",
            "CNN + LSTM (3 frames)",
            _variants("cnn-lstm"),
            seeds=3,
            cost=1.2,
            sees="3 RGB frames (0.5 s)",
        ),
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
