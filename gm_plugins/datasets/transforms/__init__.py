"""Data transforms of the preprocessing chain, registered into MMAction2's TRANSFORMS."""
