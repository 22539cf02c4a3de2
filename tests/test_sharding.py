"""The VLM forward on a 2x2x2 (data, fsdp, tensor) mesh equals the single-device forward."""
import flax.linen as nn
import jax
import numpy as np
import pytest

from vlm_jax import configs, models, sharding


@pytest.mark.parametrize("compressor", ["quecc"])
def test_vlm_forward_sharded_equals_single_device(compressor):
  assert jax.device_count() >= 8, "conftest sets 8 host devices"
  config = configs.preset(f"vlm:llm=tiny_llm:size=xs,compressor={compressor},budget=16")
  model = models.build(config)
  inputs = models.dummy_inputs(config, batch=4, text_length=12)
  rng = np.random.default_rng(0)
  inputs["pixels"] = rng.normal(size=inputs["pixels"].shape).astype(np.float32)
  inputs["input_ids"] = rng.integers(1, 1000, inputs["input_ids"].shape).astype(np.int32)
  inputs["input_ids"][np.arange(4), [1, 3, 5, 0]] = config.image_token_id
  inputs["attention_mask"][2, 9:] = 0
  boxed = models.init(config, jax.random.PRNGKey(0))
  params = nn.unbox(boxed)
  want = jax.jit(model.apply)({"params": params}, **inputs)

  mesh = sharding.make_mesh(data=2, fsdp=2, tensor=2, devices=jax.devices()[:8])
  shardings = sharding.logical_shardings(boxed, mesh)
  sharded = sharding.shard_params(params, shardings)
  assert any(len(x.sharding.device_set) == 8 and not x.sharding.is_fully_replicated
             for x in jax.tree.leaves(sharded))
  batch = {k: jax.device_put(v, sharding.batch_sharding(mesh, v.ndim)) for k, v in inputs.items()}
  with sharding.activate(mesh):
    got = jax.jit(lambda p, b: model.apply({"params": p}, **b))(sharded, batch)
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5, rtol=0)
