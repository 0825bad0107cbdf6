"""Generate a synthetic infant dataset.

Runs ``python -m gm_plugins.datasets.synthetic.make_dataset``.
"""

import sys

from gm_plugins.datasets.synthetic.make_dataset import main

if __name__ == "__main__":
    sys.exit(main())
