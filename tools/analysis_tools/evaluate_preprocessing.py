"""Score the preprocessing networks against the ground truth.

Runs ``python -m gm_plugins.evaluation.evaluate_preprocessing``.
"""

import sys

from gm_plugins.evaluation.evaluate_preprocessing import main

if __name__ == "__main__":
    sys.exit(main())
