"""Tests of gm_plugins.models."""
