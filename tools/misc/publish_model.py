"""Publish a trained model into the repository's model zoo.

A checkpoint (``.pth`` from tools/train.py) is written without its optimizer, scheduler and
message-hub state, optionally with fp16 weights, as ``OUT_DIR/<name>-<sha256[:8]>.pth``. With
``--bundle CONFIG`` the stripped classifier checkpoint is exported as an inference bundle with the
config's preprocessing chain (tools/deployment/export_bundle.py) and published as one
``OUT_DIR/<name>-<sha256[:8]>.zip``; an existing bundle folder or ``.zip`` is published as it
is. With ``--metafile`` and ``--model`` the metafile entry of that model gets the new ``Weights``
path and ``Metadata.SHA256`` (the rest of the entry is kept).

Examples::

    python tools/misc/publish_model.py \
        work_dirs/fcn_unet-s5-c8_b4-4k_synthetic-seg-160x120/iter_4000.pth \
        --out-dir zoo/preprocess --metafile configs/preprocess/metafile.yml \
        --model fcn_unet-s5-c8_b4-4k_synthetic-seg-160x120
    python tools/misc/publish_model.py work_dirs/demo/two_stream/best_*.pth --fp16 \
        --bundle configs/gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py \
        --out-dir zoo/gm --metafile configs/gm/metafile.yml \
        --model two-stream_r18-3stage-concat-fusion_demo_gm-synthetic_bundle
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from gm_plugins.deploy.bundle import export_bundle, load_bundle, zip_bundle
from gm_plugins.utils.zoo import (
    ZooError,
    publish_checkpoint,
    publish_file,
    set_metafile_weights,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="a checkpoint .pth, a bundle folder or .zip")
    parser.add_argument("--out-dir", type=Path, required=True, help="zoo folder, e.g. zoo/gm")
    parser.add_argument(
        "--name", help="published name's stem (default: --model, else the source's folder name)"
    )
    parser.add_argument("--fp16", action="store_true", help="store floating weights as fp16")
    parser.add_argument(
        "--bundle", type=Path, metavar="CONFIG", help="publish a bundle of this classifier config"
    )
    parser.add_argument("--metafile", type=Path, help="metafile.yml whose entry to update")
    parser.add_argument("--model", help="the entry's Name in --metafile")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if (args.metafile is None) != (args.model is None):
        print("error: --metafile and --model go together", file=sys.stderr)
        return 2
    source = args.source
    if not source.exists():
        print(f"error: {source} does not exist", file=sys.stderr)
        return 2
    name = args.name or args.model or (source.stem if source.is_dir() else source.parent.name)
    try:
        if source.is_dir() or source.suffix == ".zip":
            load_bundle(source)  # refuse to publish a bundle that does not verify
            if args.fp16:
                print("error: --fp16 applies to checkpoints, not bundles", file=sys.stderr)
                return 2
            with tempfile.TemporaryDirectory() as scratch:
                archive = source
                if source.is_dir():
                    archive = zip_bundle(source, Path(scratch) / "bundle.zip")
                published = publish_file(archive, args.out_dir, name)
        elif args.bundle is not None:
            with tempfile.TemporaryDirectory() as scratch:
                stripped = publish_checkpoint(source, scratch, "classifier", fp16=args.fp16)
                folder = export_bundle(args.bundle, stripped, Path(scratch) / "bundle", name=name)
                archive = zip_bundle(folder, Path(scratch) / "bundle.zip")
                published = publish_file(archive, args.out_dir, name)
        else:
            published = publish_checkpoint(source, args.out_dir, name, fp16=args.fp16)
        if args.metafile is not None:
            if published.is_absolute() and published.is_relative_to(Path.cwd()):
                published = published.relative_to(Path.cwd())
            set_metafile_weights(args.metafile, args.model, published)
    except (ZooError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    size = published.stat().st_size / 2**20
    print(f"published {published} ({size:.2f} MiB)")
    if args.metafile is not None:
        print(f"{args.metafile}: {args.model} now names it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
