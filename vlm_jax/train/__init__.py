"""Training: answer-token loss, AdamW per param group, the sharded step, checkpoints,
and the loop `train(config, workdir)`."""
from vlm_jax.train.config import PARAM_GROUPS, apply_overrides, default_config, resolve
from vlm_jax.train.loop import TrainResult, train
from vlm_jax.train.multi_budget import MODES as MULTI_BUDGET_MODES
from vlm_jax.train.pretrained import load_run
from vlm_jax.train.state import TrainState
