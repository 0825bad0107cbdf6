"""Experiments bound to this repository's configs: cross-validation, the shipped experiments,
the synthetic benchmark, the backbone leaderboard, the model cache, the results store and the
evaluation of the model zoo. Paths are relative to the working directory or passed in."""
