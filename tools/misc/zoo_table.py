"""Print the model zoo as a Markdown table, or rewrite it in the README and the docs.

The table is made from model-index.yml and the metafiles alone; ``--write`` replaces the part
between the two ``<!-- zoo-table -->`` lines of each file (atomically), ``--check`` exits 1 when a
file's table differs from the metafiles.

Examples::

    python tools/misc/zoo_table.py
    python tools/misc/zoo_table.py --write README.md docs/en/model_zoo.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gm_plugins.utils.io import write_text_atomic
from gm_plugins.utils.zoo import ZooError, replace_zoo_table, zoo_table


def page_link_prefix(page: Path) -> str:
    """How a page reaches the repository root (``../../`` for docs/en/x.md, '' for README.md)."""
    depth = len(page.resolve().relative_to(Path.cwd().resolve()).parts) - 1
    return "../" * depth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", nargs="+", type=Path, help="files to rewrite the table in")
    action.add_argument("--check", nargs="+", type=Path, help="files whose table must match")
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        print(zoo_table("."))
        return 0
    stale = []
    for path in args.write or args.check:
        text = path.read_text()
        table = zoo_table(".", link_prefix=page_link_prefix(path))
        try:
            updated = replace_zoo_table(text, table)
        except ZooError as error:
            print(f"error: {path}: {error}", file=sys.stderr)
            return 2
        if args.write and updated != text:
            write_text_atomic(path, updated)
            print(f"{path}: zoo table rewritten")
        elif args.check and updated != text:
            stale.append(path)
    for path in stale:
        print(f"{path}: the zoo table differs from the metafiles; run --write", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
