"""Training-engine extensions: resumed runs that repeat uninterrupted ones exactly."""

from .hooks import CHECKPOINT_KEY, ExactResumeHook, enable_exact_resume
from .randomness import (
    capture_rng_states,
    derive_seed,
    epoch_seed,
    restore_rng_states,
    seed_everything,
    seed_worker,
)

__all__ = [
    "CHECKPOINT_KEY",
    "ExactResumeHook",
    "capture_rng_states",
    "derive_seed",
    "enable_exact_resume",
    "epoch_seed",
    "restore_rng_states",
    "seed_everything",
    "seed_worker",
]
