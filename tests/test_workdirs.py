"""evae_jax.workdirs: a workdir is tied to one config, earlier runs are
moved aside rather than lost, and only process 0 writes."""

import json
import os

import pytest

from configs import test as test_config
from evae_jax import configuration
from evae_jax import sharding
from evae_jax import workdirs


def test_prepare_records_the_config_and_allows_resumable_changes(tmp_path):
  workdir = str(tmp_path / 'run')
  config = test_config.get_config()
  workdirs.prepare(config, workdir)
  saved = json.load(open(os.path.join(workdir, workdirs.CONFIG_FILE)))
  assert saved['model']['latent_dim'] == config.model.latent_dim
  config.train.num_epochs += 5  # more epochs: the same run, resumed
  config.train.process_id = 1   # a launch detail
  workdirs.prepare(config, workdir)
  saved = json.load(open(os.path.join(workdir, workdirs.CONFIG_FILE)))
  assert saved['train']['num_epochs'] == config.train.num_epochs


def test_a_different_model_is_refused_then_moved_aside_on_request(tmp_path):
  workdir = str(tmp_path / 'run')
  workdirs.prepare(test_config.get_config(), workdir)
  open(os.path.join(workdir, 'metrics.jsonl'), 'w').write('{"step": 1}\n')
  other = test_config.get_config()
  other.model.latent_dim += 2
  with pytest.raises(configuration.ConfigError, match='model.latent_dim'):
    workdirs.prepare(other, workdir)
  assert os.path.exists(os.path.join(workdir, 'metrics.jsonl'))  # untouched
  other.train.overwrite = True
  workdirs.prepare(other, workdir)
  previous = [n for n in os.listdir(workdir) if n.startswith('previous-')]
  assert len(previous) == 1
  assert os.path.exists(os.path.join(workdir, previous[0], 'metrics.jsonl'))
  assert not os.path.exists(os.path.join(workdir, 'metrics.jsonl'))


def test_other_processes_check_but_never_write(tmp_path, monkeypatch):
  monkeypatch.setattr(sharding, 'is_lead', lambda: False)
  fresh = str(tmp_path / 'fresh')
  workdirs.prepare(test_config.get_config(), fresh)
  assert not os.path.exists(fresh)  # process 0 creates it
  monkeypatch.undo()
  used = str(tmp_path / 'used')
  workdirs.prepare(test_config.get_config(), used)
  before = sorted(os.listdir(used))
  monkeypatch.setattr(sharding, 'is_lead', lambda: False)
  other = test_config.get_config()
  other.model.latent_dim += 2
  with pytest.raises(configuration.ConfigError, match='model.latent_dim'):
    workdirs.prepare(other, used)
  other.train.overwrite = True
  workdirs.prepare(other, used)  # process 0 does the moving
  assert sorted(os.listdir(used)) == before


def test_evaluation_config_may_differ_only_in_evaluation_fields(tmp_path):
  workdir = str(tmp_path / 'run')
  config = test_config.get_config()
  workdirs.prepare(config, workdir)
  config.eval.iw_samples = 7
  workdirs.check_evaluation_config(config, workdir)
  config.model.kind = 'vae'
  with pytest.raises(configuration.ConfigError, match='model.kind'):
    workdirs.check_evaluation_config(config, workdir)
