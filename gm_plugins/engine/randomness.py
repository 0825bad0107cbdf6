"""Random number generator states: capture, restore, and seeds derived from (seed, epoch, ...).

A training run consumes randomness in two kinds of process: the main one (the data
preprocessor's random flip, dropout, the data loader's draw of its workers' base seed) and the
data loader workers (augmentation in the pipeline). For a resumed run to repeat an uninterrupted
one exactly, both must be functions of where the run is, not of how it got there:

- the main process is reseeded at the start of every training epoch from ``(seed, epoch,
  rank)`` (:func:`epoch_seed`, :func:`seed_everything`);
- workers start afresh every epoch and seed themselves from the base seed the loader drew from
  the freshly seeded main process (:func:`seed_worker`), instead of mmengine's default
  ``worker_init_fn``, which gives every epoch the same worker seeds, and instead of persistent
  workers, whose generators carry on across epochs where a resumed run cannot follow.

The states are kept as tensors, lists and ints only, so checkpoints holding them still load
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from mmengine.registry import FUNCTIONS


def derive_seed(*entropy: int) -> int:
    """A 63-bit seed mixed from non-negative integers (NumPy's SeedSequence), e.g. (seed, epoch)."""
    if any(int(value) < 0 for value in entropy):
        raise ValueError(f"seed material must be non-negative integers, got {entropy}")
    state = np.random.SeedSequence([int(value) for value in entropy]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(np.random.SeedSequence(seed).generate_state(4, np.uint32))
    torch.manual_seed(seed)  # also seeds every CUDA device


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The main-process seed of a training epoch; ``seed`` may be negative (mmengine allows it)."""
    return derive_seed(int(seed) % 2**63, epoch, rank)


def capture_rng_states() -> dict:
    """The states of Python's ``random``, NumPy's global generator and torch's generators."""
    version, internal, gauss = random.getstate()
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    states = dict(
        python=dict(version=version, internal=list(internal), gauss=gauss),
        numpy=dict(
            name=name,
            keys=keys.tolist(),
            position=int(position),
            has_gauss=int(has_gauss),
            cached_gaussian=float(cached_gaussian),
        ),
        torch=torch.get_rng_state(),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    """Put back states from :func:`capture_rng_states` (CUDA ones only if the devices match)."""
    python = states["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    numpy = states["numpy"]
    np.random.set_state(
        (
            numpy["name"],
            np.asarray(numpy["keys"], dtype=np.uint32),
            numpy["position"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    torch.set_rng_state(states["torch"].cpu())
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([state.cpu() for state in cuda])


# mmengine's own registry: the runner looks loader functions up there, and mmaction2's
# function registry cannot be searched (it names a module, mmaction.mmengine, that is missing).
@FUNCTIONS.register_module()
def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` seeding a loader worker from the base seed its loader drew.

    torch draws the base seed from the main process's generator each time an iterator starts
    its workers, so workers differ from epoch to epoch and follow the main process's seed.
    """
    info = torch.utils.data.get_worker_info()
    seed = info.seed if info is not None else worker_id
    seed_everything(derive_seed(seed % 2**63, worker_id))
