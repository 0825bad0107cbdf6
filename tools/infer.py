"""Classify videos with a bundle or a config and checkpoint.

Runs ``python -m gm_plugins.apis.infer``.
"""

import sys

from gm_plugins.apis.infer import main

if __name__ == "__main__":
    sys.exit(main())
