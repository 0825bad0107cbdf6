"""Which runs the synthetic benchmark needs: every method's RGB variants on validation infants,
then the chosen variant's further seeds (see :mod:`gm_plugins.experiments.benchmark`)."""

from __future__ import annotations

from pathlib import Path

from gm_plugins.experiments.benchmark_definition import Benchmark, Method
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
        """Seed 0 of every variant of methods that choose, every seed of the others."""
        runs = []
        for method in self.bench.methods:
            if method.follows:
                continue
            if len(method.configs) > 1:
                runs += [self.table1_run(method, variant, 0) for variant in method.configs]
            else:
                variant = next(iter(method.configs))
                runs += [self.table1_run(method, variant, seed) for seed in range(method.seeds)]
        return runs

    def chosen_variant(self, method: Method) -> tuple[str, dict[str, dict]]:
        """The variant with the best validation accuracy (then MCC, then lower cross-entropy)
        among seed-0 runs, and every variant's validation figures."""
        if method.follows:
            return self.chosen_variant(self.bench.method(method.follows))[0], {}
        if len(method.configs) == 1:
            return next(iter(method.configs)), {}
        figures = {
            variant: read_record(self.table1_run(method, variant, 0))["val"]
            for variant in method.configs
        }
        best = max(
            figures,
            key=lambda v: (figures[v]["accuracy"], figures[v]["mcc"], -figures[v]["cross_entropy"]),
        )
        return best, figures

    def chosen_runs(self, method: Method) -> list[Run]:
        variant, _ = self.chosen_variant(method)
        return [self.table1_run(method, variant, seed) for seed in range(method.seeds)]

    def confounding_runs(self) -> list[Run]:
        bench = self.bench
        method = bench.method(bench.confounding_method)
        variant, _ = self.chosen_variant(method)
        config = method.configs[variant]
        return [
            Run(
                f"confounding/{arm.key}",
                config,
                0,
                self.work_dir / "confounding" / arm.key / config_stem(config),
                bench.confound_train,
                bench.confound_val,
                bench.test,
                arm.cache,
                arm.cache,
                method.cost,
                bench.extra_options,
                "confounding",
                (bench.chains[arm.cache],),
                self.data_key(bench.confound_train, bench.confound_val, bench.test),
            )
            for arm in bench.arms
        ]
