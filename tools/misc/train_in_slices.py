"""Train a model in slices that each fit a sitting, keeping progress in the repository.

A training that takes longer than one machine is available (the evaluation-grade preprocessing
models: about 3 hours on 2 cores) runs for ``--minutes`` at most, then stops cleanly and keeps its
newest complete checkpoint (with the optimizer state, so the next slice resumes) in
``--keep-dir`` (default ``zoo/_training/<config stem>/``). Commit that folder; the next slice, on
any machine, copies it back into ``work_dirs/<config stem>/`` and resumes. A config that starts
from another model's checkpoint (``load_from``) gets it, when it is not in ``work_dirs/``, from
that model's completed, stripped weights kept in ``zoo/_training/<its config stem>/``. Once the
training has reached its last iteration or epoch, publish the model
(tools/misc/publish_model.py) and remove the kept checkpoint
(``git rm -r zoo/_training/<config stem>``).

Example::

    python tools/misc/train_in_slices.py \
        configs/preprocess/fcn_unet-s5-c16_b4-12k_synthetic-seg-160x120.py --minutes 100 \
        --checkpoint-interval 500
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from mmengine.config import Config

from gm_plugins.utils.io import atomic_path, write_text_atomic
from gm_plugins.utils.zoo import published_prefix

ROOT = Path(__file__).resolve().parents[2]
KEEP_ROOT = Path("zoo/_training")
CHECKPOINT_NAME = re.compile(r"^(iter|epoch)_(\d+)\.pth$")


def final_checkpoint_name(cfg: Config) -> str:
    """``iter_<max_iters>.pth`` or ``epoch_<max_epochs>.pth``: the training's last checkpoint."""
    if "max_iters" in cfg.train_cfg:
        return f"iter_{cfg.train_cfg.max_iters}.pth"
    return f"epoch_{cfg.train_cfg.max_epochs}.pth"


def newest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint mmengine's ``last_checkpoint`` names (written after the file is complete),
    else the highest ``iter_N``/``epoch_N`` file; None if there is none."""
    pointer = folder / "last_checkpoint"
    if pointer.is_file():
        named = Path(pointer.read_text().strip())
        candidate = folder / named.name
        if candidate.is_file():
            return candidate
    numbered = [
        (int(match.group(2)), path)
        for path in folder.glob("*.pth")
        if (match := CHECKPOINT_NAME.match(path.name))
    ]
    return max(numbered)[1] if numbered else None


def progress(path: Path | None) -> int:
    """The iteration or epoch a checkpoint's name says (0 for none)."""
    match = CHECKPOINT_NAME.match(path.name) if path else None
    return int(match.group(2)) if match else 0


def restore(keep_dir: Path, work_dir: Path) -> Path | None:
    """Copy the kept checkpoint into ``work_dir`` when it is further than what is there."""
    kept = newest_checkpoint(keep_dir) if keep_dir.is_dir() else None
    local = newest_checkpoint(work_dir) if work_dir.is_dir() else None
    if kept is None or progress(kept) <= progress(local):
        return local
    work_dir.mkdir(parents=True, exist_ok=True)
    target = work_dir / kept.name
    with atomic_path(target) as temporary:
        shutil.copyfile(kept, temporary)
    write_text_atomic(work_dir / "last_checkpoint", str(target.resolve()))
    print(f"resuming from the kept checkpoint {kept} ({kept.name})", flush=True)
    return target


def restore_start(cfg: Config, keep_root: Path) -> Path | None:
    """Put the checkpoint the config starts from (``load_from`` under ``work_dirs/``) in place
    from the completed model kept in ``keep_root/<its config stem>/`` when it is missing."""
    start = cfg.get("load_from")
    if not start or Path(start).parts[0] != "work_dirs" or (ROOT / start).is_file():
        return None
    kept = sorted((keep_root / Path(start).parent.name).glob("*.pth"))
    kept = [path for path in kept if published_prefix(path) is not None]
    if not kept:
        raise SystemExit(f"{start} (load_from) is missing: train or restore that model first")
    target = ROOT / start
    with atomic_path(target) as temporary:
        shutil.copyfile(kept[-1], temporary)
    print(f"{start}: taken from {kept[-1].relative_to(ROOT)}", flush=True)
    return target


def keep(work_dir: Path, keep_dir: Path) -> Path | None:
    """Copy the newest complete checkpoint of ``work_dir`` into ``keep_dir``; older kept ones go
    once the new one is in place."""
    newest = newest_checkpoint(work_dir) if work_dir.is_dir() else None
    if newest is None:
        return None
    keep_dir.mkdir(parents=True, exist_ok=True)
    target = keep_dir / newest.name
    if not target.is_file():
        with atomic_path(target) as temporary:
            shutil.copyfile(newest, temporary)
    write_text_atomic(keep_dir / "last_checkpoint", target.name)
    for old in keep_dir.glob("*.pth"):
        if old != target:
            old.unlink()
    return target


def train_for(command: list[str], minutes: float, env: dict) -> str:
    """Run ``command`` for at most ``minutes``; returns 'finished' or 'stopped'."""
    # A shell's background job starts with SIGINT ignored, and a child would inherit that and
    # never stop cleanly: it gets the default action back, so Python raises KeyboardInterrupt.
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + minutes * 60
    try:
        code = process.wait(timeout=max(deadline - time.monotonic(), 0))
    except (subprocess.TimeoutExpired, KeyboardInterrupt):  # the budget, or Ctrl-C: keep it
        os.killpg(process.pid, signal.SIGINT)  # mmengine stops; complete checkpoints stay
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return "stopped"
    if code != 0:
        raise SystemExit(f"training failed with exit code {code}: {' '.join(command)}")
    return "finished"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", type=Path, help="the model's training config")
    parser.add_argument("--minutes", type=float, required=True, help="this slice's time budget")
    parser.add_argument("--keep-dir", type=Path, help="default: zoo/_training/<config stem>")
    parser.add_argument(
        "--checkpoint-interval", type=int, help="iterations or epochs between checkpoints"
    )
    parser.add_argument("--threads", type=int, help="torch threads of the training")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(str(ROOT / args.config))
    stem = args.config.stem
    work_dir = ROOT / "work_dirs" / stem
    keep_dir = ROOT / (args.keep_dir or KEEP_ROOT / stem)
    final = final_checkpoint_name(cfg)
    if (work_dir / final).is_file():
        print(f"{work_dir / final} exists: the training is complete; publish it")
        return 0
    restore_start(cfg, ROOT / KEEP_ROOT)
    restore(keep_dir, work_dir)
    command = [sys.executable, "tools/train.py", str(args.config), "--resume"]
    if args.checkpoint_interval:
        interval = f"default_hooks.checkpoint.interval={args.checkpoint_interval}"
        command += ["--cfg-options", interval]
    env = dict(os.environ)
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    print("$ " + " ".join(command), flush=True)
    outcome = train_for(command, args.minutes, env)
    if (work_dir / final).is_file():
        print(f"complete: {work_dir / final}; publish it with tools/misc/publish_model.py and "
              f"remove {keep_dir.relative_to(ROOT)}")  # fmt: skip
        return 0
    kept = keep(work_dir, keep_dir)
    where = f"{kept.relative_to(ROOT)}" if kept else "nothing (no checkpoint yet)"
    print(f"{outcome} at {progress(kept)} of {final}; kept {where}: commit it and run this "
          "command again to go on")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
