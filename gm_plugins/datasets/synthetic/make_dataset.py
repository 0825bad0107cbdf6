"""Generate the synthetic infant-movement dataset (the project's default data).

Example::

    python tools/data/make_synthetic_dataset.py --out data/gm_synthetic --workers 2 \\
        --preview preview.png

    # a large dataset in four shares (side by side, or on four machines sharing the folder),
    # then the same command without --shard: it makes whatever is missing and the tables
    python tools/data/make_synthetic_dataset.py --out BIG --subjects 3000 --shard 0/4
    ...
    python tools/data/make_synthetic_dataset.py --out BIG --subjects 3000 --shard 3/4
    python tools/data/make_synthetic_dataset.py --out BIG --subjects 3000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gm_plugins.datasets.synthetic import (
    GeneratorConfig,
    contact_sheet,
    generate_dataset,
)
from gm_plugins.datasets.synthetic.generate import check_dataset
from gm_plugins.datasets.synthetic.writer import write_png
from gm_plugins.utils.sharding import SHARD_HELP, format_shard, shard_argument

DEFAULTS = GeneratorConfig()
DESCRIPTION = """\
Generate the synthetic infant-movement dataset: supine infants whose movements follow the clinical
descriptions of writhing (WMs), fidgety (FMs) and poor-repertoire (PR) General Movements, with
ground-truth masks and COCO-17 keypoints, in six recording-environment families.

The defaults (36 infants, 12 per class, 20 s at 30 fps, 320x240) make a dataset a CPU demo trains
on in minutes: 36 infants allow stratified 5-fold cross-validation by infant, 20 s at 30 fps hold
four of the paper's 150-frame window starts, and 320x240 keeps hands and feet several pixels wide
for the segmentation and pose models, while the aligned 224x224 crops cost the same at any frame
size. Generation takes about a minute on 2 cores; 160x120 is about three times faster.
"""


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--size {text!r}: write it as WIDTHxHEIGHT, e.g. 320x240"
        ) from None
    return width, height


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--out",
        required=True,
        type=Path,
        help="output directory (created; resumed if it holds a run with the same arguments)",
    )
    add(
        "--subjects",
        type=int,
        default=DEFAULTS.subjects,
        help="infants listed in subjects.csv, balanced over WMs/FMs/PR (default: %(default)s)",
    )
    add(
        "--seconds",
        type=float,
        default=DEFAULTS.seconds,
        help="video length per infant in seconds (default: %(default)s)",
    )
    add(
        "--fps",
        type=int,
        default=DEFAULTS.fps,
        help="frames per second; motion is drawn in seconds, so one seed gives the same "
        "infants moving the same way at 25, 30, 50 or 60 fps (default: %(default)s)",
    )
    add(
        "--size",
        type=parse_size,
        default=f"{DEFAULTS.width}x{DEFAULTS.height}",
        metavar="WxH",
        help="frame size, both even for H.264 yuv420p (default: %(default)s)",
    )
    add(
        "--seed",
        type=int,
        default=DEFAULTS.seed,
        help="dataset seed; each infant's randomness derives from (seed, index) "
        "(default: %(default)s)",
    )
    add(
        "--confound",
        type=float,
        default=DEFAULTS.confound,
        metavar="P",
        help="probability that an infant's environment family comes from two families tied to "
        "its class (else uniformly from all six): 0 keeps environment and class independent, "
        "1 lets the background alone predict the class (default: %(default)s)",
    )
    add(
        "--prep-subjects",
        type=int,
        default=DEFAULTS.prep_subjects,
        help="extra infants (p0000...) whose frames fill mmseg/ and mmpose/; the last quarter "
        "is the val split (default: %(default)s)",
    )
    add(
        "--prep-frames",
        type=int,
        default=DEFAULTS.prep_frames,
        help="frames taken from each extra infant (default: %(default)s)",
    )
    add(
        "--empty-scenes",
        type=int,
        default=DEFAULTS.empty_scenes,
        metavar="N",
        help="also render N scenes without an infant (e0000...; kinds empty bedding, "
        "distractors only, moving texture) listed in empty_scenes.csv with an empty label, to "
        "measure a 'no infant found' check (default: %(default)s)",
    )
    add(
        "--workers",
        type=int,
        default=1,
        help="parallel processes; the output is identical for any value (default: %(default)s)",
    )
    add(
        "--preview",
        type=Path,
        metavar="PNG",
        help="also write a contact sheet (rows: classes, columns: environment families)",
    )
    add(
        "--shard",
        type=shard_argument,
        metavar="I/N",
        help=SHARD_HELP + "; the shard that completes the dataset writes its tables (identical "
        "to a one-process run's), else run the command once more without --shard "
        "(default: all)",
    )
    add(
        "--check",
        action="store_true",
        help="generate nothing: list the subjects (of the share, with --shard) still missing; "
        "exit code 1 if any is, or (without --shard) if the tables are not written yet",
    )
    add("--quiet", action="store_true", help="no progress bar")
    return parser  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = GeneratorConfig(
        subjects=args.subjects,
        seconds=args.seconds,
        fps=args.fps,
        width=args.size[0],
        height=args.size[1],
        seed=args.seed,
        confound=args.confound,
        prep_subjects=args.prep_subjects,
        prep_frames=args.prep_frames,
        empty_scenes=args.empty_scenes,
    )
    if args.check:
        return check(args.out, config, args.shard)
    start = time.perf_counter()
    try:
        meta = generate_dataset(
            args.out, config, workers=args.workers, progress=not args.quiet, shard=args.shard
        )
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ValueError) else 1
    if args.preview:
        write_png(args.preview, contact_sheet(config.size, config.seed, config.fps))
    elapsed = time.perf_counter() - start
    if meta["complete"]:
        print(f"wrote {args.out}: {meta['class_counts']} in {elapsed:.1f} s")
    else:
        share = f"shard {format_shard(args.shard)}" if args.shard is not None else "this run's part"
        print(
            f"{share} of {args.out} done in {elapsed:.1f} s; the dataset "
            "is complete once every shard is (the last one writes subjects.csv; add --check to "
            "see what is missing)"
        )
    return 0


def check(out: Path, config: GeneratorConfig, shard: tuple[int, int] | None) -> int:
    """--check: print what is missing and a one-line summary; the exit code."""
    try:
        report = check_dataset(out, config, shard)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for subject_id in report["missing"]:
        print(f"missing {subject_id}")
    where = f" in shard {format_shard(shard)}" if shard is not None else ""
    done = report["total"] - len(report["missing"])
    state = "complete" if report["complete"] else "not complete"
    print(f"check: {done} of {report['total']} subject(s){where} done; {out} is {state}")
    if not report["complete"] and not report["missing"] and shard is None:
        print("every subject is done: run the command without --check to write the tables")
    if shard is not None:
        return 1 if report["missing"] else 0
    return 0 if report["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
