"""Training configs: overrides, validation, and the config files of configs/train/."""
import pytest

from vlm_jax import configs, train
from vlm_jax.train import config as config_lib


def tiny():
  return configs.load("configs/train/tiny.py:size=xs,budget=4,task=counting")


def test_overrides_cast_to_the_field_type():
  config = train.apply_overrides(tiny(), ["total_steps=7", "optim.learning_rates.llm=1",
                                          "data.bucket_lengths=[8, 16]", "init_from=/tmp/run",
                                          "checkpoint.async_save=False"])
  assert config.total_steps == 7
  assert config.optim.learning_rates.llm == 1.0 and isinstance(config.optim.learning_rates.llm,
                                                                float)
  assert config.data.bucket_lengths == (8, 16)
  assert config.init_from == "/tmp/run"
  assert config.checkpoint.async_save is False


@pytest.mark.parametrize("override, error", [
    ("optim.learning_rate=1", KeyError),  # a typo names the known fields
    ("batch_size", ValueError),
    ("checkpoint.async_save=1", ValueError),
    ("seed.x=1", KeyError),
])
def test_bad_overrides_raise(override, error):
  with pytest.raises(error):
    train.apply_overrides(tiny(), [override])


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(batch_size=6, microbatches=4), "not divisible by microbatches"),
    (lambda c: c.optim.learning_rates.update(vision=0.0, compressor=0.0, projector=0.0, llm=0.0),
     "nothing to train"),
    (lambda c: c.optim.learning_rates.update(vision=-1.0), ">= 0"),
    (lambda c: c.update(loss_chunk_size=-1), "loss_chunk_size must be >= 0"),
    (lambda c: c.__setitem__("model", None), "VLM model config"),
])
def test_resolve_rejects_bad_configs(change, message):
  config = tiny()
  change(config)
  with pytest.raises(ValueError, match=message):
    train.resolve(config)


def test_resolve_rejects_unknown_keys():
  config = tiny()
  config.optim.momentum = 0.9
  with pytest.raises(ValueError, match="optim.momentum"):
    train.resolve(config)


def test_tiny_stages_freeze_by_learning_rate():
  rates = lambda stage: dict(configs.load(f"configs/train/tiny.py:stage={stage}")
                             .optim.learning_rates)
  assert rates("all") == dict.fromkeys(config_lib.PARAM_GROUPS, 1e-3)
  assert rates("1") == dict(vision=0.0, compressor=1e-3, projector=1e-3, llm=0.0)
  assert rates("2") == dict(vision=0.0, compressor=1e-3, projector=1e-3, llm=1e-3)


@pytest.mark.parametrize("llm", ["qwen1_5_0_5b", "qwen1_5_1_8b", "qwen1_5_4b", "qwen1_5_7b",
                                 "qwen1_5_14b"])
def test_paper_grid_follows_llava_1_5(llm):
  for budget in (1, 4, 16, 36, 64, 144, 576):
    stage1 = train.resolve(configs.load(f"configs/train/paper.py:llm={llm},budget={budget}"))
    assert stage1.model.compressor.budget == budget
  assert stage1.batch_size == 256 and stage1.num_epochs == 1.0
  assert dict(stage1.optim.learning_rates) == dict(vision=0.0, compressor=1e-3, projector=1e-3,
                                                   llm=0.0)
  assert stage1.optim.warmup_fraction == 0.03 and stage1.optim.weight_decay == 0.0
  assert stage1.init_llm_from.endswith(llm) and stage1.model.llm.vocab_size > 150000
  stage2 = train.resolve(configs.load(
      f"configs/train/paper.py:llm={llm},budget=16,stage=2,stage1=runs/s1"))
  assert stage2.batch_size == 128 and stage2.init_from == "runs/s1"
  assert dict(stage2.optim.learning_rates) == dict(vision=0.0, compressor=2e-5, projector=2e-5,
                                                   llm=2e-5)


def test_paper_stage2_needs_the_stage1_run():
  with pytest.raises(ValueError, match="stage1=WORKDIR"):
    configs.load("configs/train/paper.py:stage=2")
