"""Shared fixtures: paths, and a guard that no test can start a tfds download."""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION_MNIST = os.path.join(os.path.dirname(ROOT), 'shared', 'data',
                             'fashion-mnist')


@pytest.fixture(autouse=True)
def _no_network_downloads(monkeypatch):
  from evae_jax import input_pipeline
  monkeypatch.setattr(input_pipeline, '_network_reachable',
                      lambda *a, **k: False)
