"""Preprocess a dataset's videos into the cache.

Runs ``python -m gm_plugins.preprocess.preprocess_videos``.
"""

import sys

from gm_plugins.preprocess.preprocess_videos import main

if __name__ == "__main__":
    sys.exit(main())
