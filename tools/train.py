"""Train a model from a config.

Runs ``python -m gm_plugins.engine.train``.
"""

from gm_plugins.engine.train import main

if __name__ == "__main__":
    main()
