"""Tests of gm_plugins.evaluation."""
