"""A hook that makes a resumed epoch-based training run repeat an uninterrupted one exactly.

mmengine 0.10.7 resumes the weights, optimizer, schedulers and message hub, but not:

- the random generators: after a resume, the main process (random flip, dropout) and the loader
  workers (augmentation) start from the run's initial seed, not from where the run was;
- the validation of the checkpoint's epoch: ``CheckpointHook`` saves ``epoch_k.pth`` before
  epoch ``k`` is validated (and saves it again after a new best, still before
  ``EarlyStoppingHook`` counts that validation), and a resumed run goes straight on to epoch
  ``k + 1``: killed while validating, it never makes epoch ``k``'s best checkpoint; killed
  later, early stopping never counts epoch ``k``;
- the sampler's seed (drawn anew when the config sets none) and ``EarlyStoppingHook``'s
  counters.

:class:`ExactResumeHook` reseeds every training epoch from ``(seed, epoch, rank)``, stores the
rest in each checkpoint and, on resume, puts it back and runs the pending validation.
:func:`enable_exact_resume` adds the hook to a config and makes the training loader start its
workers afresh each epoch, seeded by :func:`~gm_plugins.engine.randomness.seed_worker`.
"""

from __future__ import annotations

import logging

from mmaction.registry import HOOKS
from mmengine.config import Config
from mmengine.dist import get_rank
from mmengine.hooks import EarlyStoppingHook, Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from .randomness import capture_rng_states, epoch_seed, restore_rng_states, seed_everything

#: Where the hook keeps its state inside a checkpoint.
CHECKPOINT_KEY = "exact_resume"
HOOK_TYPE = "mmaction.ExactResumeHook"
WORKER_INIT_FN = "seed_worker"


def _sampler(loader):
    sampler = getattr(loader, "sampler", None)
    if sampler is None or not hasattr(sampler, "seed"):
        sampler = getattr(getattr(loader, "batch_sampler", None), "sampler", None)
    return sampler if hasattr(sampler, "seed") else None


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Reseed each training epoch; store and restore what a resume needs to repeat a run.

    Per epoch (epoch-based loops), before the loader starts its workers, Python's ``random``,
    NumPy and torch are seeded from ``(runner.seed, epoch, rank)``. Each checkpoint gets an
    ``exact_resume`` entry: generator states, the sampler's seed, ``EarlyStoppingHook``
    counters, and whether it was saved at the end of a training epoch (before or while that
    epoch was validated). On resume these are restored before training continues, and that
    epoch is validated again, as the uninterrupted run validated it after saving.

    Iteration-based loops get their generator states back at the first iteration after a
    resume; their loader workers are not restored.
    """

    priority = "LOWEST"  # after CheckpointHook.before_train, which the validation needs

    def __init__(self) -> None:
        self._phase: str | None = None
        self._loaded: dict | None = None
        self._loaded_iter: int | None = None
        self._iteration_states: dict | None = None

    # -- saving -------------------------------------------------------------------------------
    def before_train_epoch(self, runner) -> None:
        self._phase = "train"
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            seed_everything(epoch_seed(runner.seed, runner.epoch, get_rank()))

    def before_val(self, runner) -> None:
        self._phase = "val"

    def after_train(self, runner) -> None:
        self._phase = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # CheckpointHook saves epoch_k.pth before validating epoch k and, when the validation
        # finds a new best, saves it again from its after_val_epoch, which runs before
        # EarlyStoppingHook's. Either way the checkpoint predates part of what validating
        # epoch k changed, so a run resumed from it validates epoch k again.
        epoch_end = isinstance(runner.train_loop, EpochBasedTrainLoop) and (
            self._phase == "val"
            or (self._phase == "train" and checkpoint["meta"].get("epoch") == runner.epoch + 1)
        )
        sampler = _sampler(runner.train_dataloader)
        checkpoint[CHECKPOINT_KEY] = dict(
            rng=capture_rng_states(),
            sampler_seed=None if sampler is None else int(sampler.seed),
            early_stopping=[
                dict(wait_count=int(hook.wait_count), best_score=float(hook.best_score))
                for hook in runner.hooks
                if isinstance(hook, EarlyStoppingHook)
            ],
            pending_validation=bool(epoch_end),
        )

    # -- resuming -----------------------------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(CHECKPOINT_KEY)
        self._loaded_iter = checkpoint.get("meta", {}).get("iter")

    def before_train(self, runner) -> None:
        self._warn_about_workers(runner)
        state, self._loaded = self._loaded, None
        if state is None or runner.iter == 0 or runner.iter != self._loaded_iter:
            return  # a fresh run, or weights loaded to fine-tune (load_from): nothing to resume
        sampler = _sampler(runner.train_dataloader)
        if sampler is not None and state.get("sampler_seed") is not None:
            sampler.seed = state["sampler_seed"]
        stoppers = [hook for hook in runner.hooks if isinstance(hook, EarlyStoppingHook)]
        for hook, saved in zip(stoppers, state.get("early_stopping", []), strict=False):
            hook.wait_count, hook.best_score = saved["wait_count"], saved["best_score"]
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            self._iteration_states = state["rng"]
            return
        restore_rng_states(state["rng"])
        if state.get("pending_validation") and self._validates_now(runner):
            print_log(
                f"Validating epoch {runner.epoch} again: its checkpoint was saved before that "
                "validation had updated the best checkpoint and early stopping",
                logger="current",
            )
            runner.val_loop.run()

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._iteration_states is not None:
            restore_rng_states(self._iteration_states)
            self._iteration_states = None

    @staticmethod
    def _validates_now(runner) -> bool:
        """Whether the train loop validates after the epoch it resumes at (its own rule)."""
        loop = runner.train_loop
        loop._decide_current_val_interval()
        return (
            runner.val_loop is not None
            and loop.epoch >= loop.val_begin
            and (loop.epoch % loop.val_interval == 0 or loop.epoch == loop.max_epochs)
        )

    @staticmethod
    def _warn_about_workers(runner) -> None:
        loader = runner.train_dataloader
        if getattr(loader, "num_workers", 0) > 0 and getattr(loader, "persistent_workers", False):
            print_log(
                "train_dataloader.persistent_workers=True: the workers' random generators "
                "carry on across epochs, which a resumed run cannot restore, so it will not "
                "repeat an uninterrupted run. Set persistent_workers=False (tools/train.py "
                "does) to resume exactly.",
                logger="current",
                level=logging.WARNING,
            )


def enable_exact_resume(cfg: Config) -> Config:
    """Add :class:`ExactResumeHook` to ``cfg`` and make its training loader resumable.

    The training loader starts its workers each epoch (``persistent_workers=False``) and
    seeds them with :func:`~gm_plugins.engine.randomness.seed_worker`, unless the config names
    its own ``worker_init_fn``. Validation and test loaders are left as they are. Returns
    ``cfg``, changed in place.
    """
    hooks = list(cfg.get("custom_hooks", None) or [])
    names = {HOOK_TYPE, HOOK_TYPE.split(".")[-1], ExactResumeHook}
    if not any(hook.get("type") in names for hook in hooks):
        hooks.append(dict(type=HOOK_TYPE))
    cfg.custom_hooks = hooks
    loader = cfg.get("train_dataloader", None)
    if loader and loader.get("num_workers", 0) > 0:
        loader.setdefault("worker_init_fn", dict(type=WORKER_INIT_FN))
        loader.persistent_workers = False
    return cfg
