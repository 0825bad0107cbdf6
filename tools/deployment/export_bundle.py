"""Export a model bundle.

Runs ``python -m gm_plugins.deploy.export_bundle``.
"""

import sys

from gm_plugins.deploy.export_bundle import main

if __name__ == "__main__":
    sys.exit(main())
