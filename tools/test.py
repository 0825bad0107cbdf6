"""Test a checkpoint of a config.

Runs ``python -m gm_plugins.engine.test``.
"""

from gm_plugins.engine.test import main

if __name__ == "__main__":
    main()
