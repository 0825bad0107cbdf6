"""Cross-validate configs by infant.

Runs ``python -m gm_plugins.experiments.cross_validate``.
"""

import sys

from gm_plugins.experiments.cross_validate import main

if __name__ == "__main__":
    sys.exit(main())
