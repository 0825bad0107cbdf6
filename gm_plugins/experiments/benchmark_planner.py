"""Which runs the synthetic benchmark needs: every method's RGB variants with the choosing seed
(compared on validation infants only), then the chosen variant's reported seeds, which exclude
the choosing seed (see :mod:`gm_plugins.experiments.benchmark_definition`)."""

from __future__ import annotations

from pathlib import Path

from gm_plugins.experiments.benchmark_definition import (
    CHOOSING_SEED,
    UNPRETRAINED_VARIANTS,
    Arm,
    Benchmark,
    Method,
)
from gm_plugins.experiments.benchmark_runs import Run, read_record


def config_stem(config: str) -> str:
    return Path(config).stem


class Planner:
    """The runs of an experiment of ``bench`` under ``work_dir``."""

    def __init__(self, bench: Benchmark, work_dir: Path) -> None:
        self.bench, self.work_dir = bench, work_dir

    def data_key(self, *roots: str) -> tuple[str, ...]:
        """The generator arguments of the datasets at ``roots`` (part of a run's store key)."""
        made = {dataset.root: dataset.args for dataset in self.bench.datasets}
        return tuple(f"{root}: {' '.join(made.get(root, ()))}" for root in roots)

    def table1_run(self, method: Method, variant: str, seed: int) -> Run:
        bench, config = self.bench, method.configs[variant]
        label = f"{method.key}/{variant}" if variant else method.key
        return Run(
            f"{label} seed {seed}",
            config,
            seed,
            self.work_dir / "table1" / config_stem(config) / f"seed{seed}",
            bench.train,
            bench.val,
            bench.test,
            bench.cache,
            bench.cache,
            method.cost,
            bench.extra_options,
            "table1",
            (bench.chains[bench.cache],),
            self.data_key(bench.train, bench.val, bench.test),
        )

    def study_runs(self) -> list[Run]:
        """The choosing seed of every variant of methods that choose, and every reported seed
        of the methods without variants (those choose nothing)."""
        runs = []
        for method in self.bench.methods:
            if method.follows:
                continue
            if method.chooses:
                runs += [
                    self.table1_run(method, variant, CHOOSING_SEED) for variant in method.configs
                ]
            else:
                variant = next(iter(method.configs))
                runs += [self.table1_run(method, variant, s) for s in method.reported_seeds]
        return runs

    def chosen_variant(self, method: Method) -> tuple[str, dict[str, dict]]:
        """The variant with the best validation accuracy (then MCC, then lower cross-entropy)
        among the choosing seed's runs, and every variant's validation figures. Test figures
        are never read here."""
        if method.follows:
            return self.chosen_variant(self.bench.method(method.follows))[0], {}
        if not method.chooses:
            return next(iter(method.configs)), {}
        figures = {
            variant: read_record(self.table1_run(method, variant, CHOOSING_SEED))["val"]
            for variant in method.configs
        }
        best = max(
            figures,
            key=lambda v: (figures[v]["accuracy"], figures[v]["mcc"], -figures[v]["cross_entropy"]),
        )
        return best, figures

    def reported_runs(self, method: Method) -> list[Run]:
        """The runs of the method's row: its chosen variant on its reported seeds."""
        variant, _ = self.chosen_variant(method)
        return [self.table1_run(method, variant, seed) for seed in method.reported_seeds]

    def pretraining_control(self, method: Method) -> dict[str, Run]:
        """Where ``method`` chose a variant that starts from pretrained weights: its variants
        that start from none, on the choosing seed (they lost the choice, so their test figures
        carry no optimism from it). Empty where the chosen variant is not pretrained."""
        variant, _ = self.chosen_variant(method)
        if not method.chooses or variant in UNPRETRAINED_VARIANTS:
            return {}
        return {
            v: self.table1_run(method, v, CHOOSING_SEED)
            for v in UNPRETRAINED_VARIANTS
            if v in method.configs
        }

    def confounding_rows(self) -> dict[str, list[Run]]:
        """Arm key -> its runs (the confounding method's chosen variant, seeds 0..arm_seeds-1)."""
        bench = self.bench
        method = bench.method(bench.confounding_method)
        variant, _ = self.chosen_variant(method)
        config = method.configs[variant]
        return {
            arm.key: [self._arm_run(arm, config, method.cost, s) for s in bench.arm_seed_list]
            for arm in bench.arms
        }

    def confounding_runs(self) -> list[Run]:
        return [run for runs in self.confounding_rows().values() for run in runs]

    def _arm_run(self, arm: Arm, config: str, cost: float, seed: int) -> Run:
        bench = self.bench
        return Run(
            f"confounding/{arm.key} seed {seed}",
            config,
            seed,
            self.work_dir / "confounding" / arm.key / config_stem(config) / f"seed{seed}",
            bench.confound_train,
            bench.confound_val,
            bench.test,
            arm.cache,
            arm.cache,
            cost,
            bench.extra_options,
            "confounding",
            (bench.chains[arm.cache],),
            self.data_key(bench.confound_train, bench.confound_val, bench.test),
        )
