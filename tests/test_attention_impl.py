"""The attention implementation switch (xla, cudnn, splash, auto), the remat policies and
the compile command's microbatch search.

On CPU the splash path runs with the kernel swapped for JAX's plain-jnp reference of it
(same masks, segment ids and layout); the kernel itself is checked in a TPU program
compiled ahead of time for a v5p-8.
"""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental.pallas.ops.tpu import splash_attention

import train_fixtures
from test_aot import libtpu_topologies, small_vlm_config  # noqa: F401  (a fixture)
from vlm_jax import cli, configs, errors, models, sharding
from vlm_jax.aot import compiler
from vlm_jax.models import attention
from vlm_jax.train import loss

TINY_TRAIN = "configs/train/tiny.py:size=l,batch=8,stage=2,compressor=avgpool"
on_cpu = pytest.mark.skipif(jax.default_backend() != "cpu", reason="runs on CPU hosts")


@pytest.mark.parametrize("platform, dtype, chosen", [
    ("cpu", jnp.float32, "xla"), ("cpu", jnp.bfloat16, "xla"),
    ("gpu", jnp.bfloat16, "cudnn"), ("gpu", jnp.float32, "xla"),
    ("tpu", jnp.float32, "splash"), ("tpu", jnp.bfloat16, "splash"),
])
def test_auto_picks_the_platforms_best(platform, dtype, chosen):
  assert attention.resolve("auto", dtype, platform) == chosen


@on_cpu
def test_auto_is_xla_on_this_cpu():
  assert attention.target_platform() == "cpu"
  assert attention.resolve("auto", jnp.float32) == "xla"


def tiny_llm(implementation):
  config = configs.preset("tiny_llm:size=xs")
  config.llm.attention = implementation
  return config


@on_cpu
@pytest.mark.parametrize("implementation", ["splash", "cudnn"])
def test_fused_kernels_refuse_on_cpu(implementation):
  config = tiny_llm(implementation)
  params = nn.unbox(models.init(config, jax.random.PRNGKey(0)))  # init traces xla anywhere
  with pytest.raises(errors.BadValueError) as error:
    models.build(config).apply({"params": params}, **models.dummy_inputs(config))
  assert errors.message(error.value) == (
      f"attention {implementation!r} does not run on cpu; choices there: auto, xla")


def test_cudnn_needs_half_precision_and_unknown_names_are_listed():
  with pytest.raises(errors.BadValueError, match="bfloat16 or float16, not float32"):
    attention.resolve("cudnn", jnp.float32, "gpu")
  with pytest.raises(errors.UnknownNameError, match="known: auto, xla, cudnn, splash"):
    attention.resolve("flash", jnp.float32, "tpu")


PADDINGS = np.array([
    [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],  # none
    [1, 1, 1, 1, 1, 1, 1, 0, 0, 0],  # right (training)
    [0, 0, 0, 0, 1, 1, 1, 1, 1, 1],  # left (generation)
    [1, 1, 1, 0, 0, 0, 0, 0, 0, 0],  # a text-only row: its masked visual slots after the text
], np.int32)


@pytest.mark.parametrize("causal", [True, False])
def test_segment_mask_is_the_xla_mask_for_real_tokens(causal):
  padding = jnp.asarray(PADDINGS)
  fused = np.asarray(attention.segment_mask(attention.segment_ids(padding), causal))
  xla = np.broadcast_to(np.asarray(attention.xla_mask(padding, causal))[:, 0], fused.shape)
  real = PADDINGS > 0
  np.testing.assert_array_equal(fused[real], xla[real])
  assert fused.any(axis=-1).all()  # no empty softmax row, padding included
  # The kernel's tail (padding to its block) is padding to every real token.
  tail = np.zeros((len(PADDINGS), 6), np.int32)
  padded = attention.segment_mask(jnp.asarray(np.concatenate([PADDINGS, tail], 1)), causal)
  np.testing.assert_array_equal(np.asarray(padded)[:, :10, :10][real], fused[real])
  assert not np.asarray(padded)[:, :10, 10:][real].any()


@pytest.mark.parametrize("length, padded, block", [
    (10, 128, 128), (128, 128, 128), (729, 768, 256), (1024, 1024, 512), (2063, 2176, 128)])
def test_splash_block_rule(length, padded, block):
  assert attention.splash_length(length) == (padded, block)


@pytest.fixture
def splash_reference(monkeypatch):
  """The splash path with the kernel swapped for JAX's jnp reference of it (runs on CPU)."""
  def reference(mask, **_):
    return splash_attention.make_masked_mha_reference(mask)
  monkeypatch.setattr(attention.splash_attention, "make_splash_mha", reference)


@pytest.mark.parametrize("mesh_axes", [None, (2, 2, 2), (1, 2, 4)])
@pytest.mark.parametrize("causal", [True, False])
def test_splash_path_matches_xla_for_real_tokens(splash_reference, mesh_axes, causal):
  """Layout, scale, block padding, grouped heads, and the shard_map over rows and heads."""
  rng = np.random.default_rng(0)
  b, t, heads, kv_heads, d = 4, 10, 4, 2, 16
  q = jnp.asarray(rng.normal(size=(b, t, heads, d)), jnp.float32)
  k, v = (jnp.asarray(rng.normal(size=(b, t, kv_heads, d)), jnp.float32) for _ in range(2))
  padding = jnp.asarray(PADDINGS) if causal else None  # the vision tower pads nothing
  run = lambda name: jax.jit(lambda q, k, v, p: attention.self_attention(
      q, k, v, p, causal=causal, implementation=name))(q, k, v, padding)
  if mesh_axes is None:
    splash = run("splash")
  else:
    with sharding.activate(sharding.make_mesh(*mesh_axes, jax.devices()[:8])):
      splash = run("splash")
  real = PADDINGS > 0 if causal else np.ones_like(PADDINGS, bool)
  np.testing.assert_allclose(np.asarray(splash)[real], np.asarray(run("xla"))[real],
                             atol=2e-5, rtol=2e-5)


def loss_and_grads(**llm_fields):
  config = train_fixtures.model_config()
  config.llm.update(llm_fields)
  model = models.build(config)
  params = nn.unbox(models.init(config, jax.random.PRNGKey(0)))
  batch = train_fixtures.collate([train_fixtures.example(i) for i in range(2)])

  def mean_loss(params):
    total, count = loss.vlm_loss(model, params, batch, config.image_token_id,
                                 jax.random.PRNGKey(1))
    return total / count
  return jax.jit(jax.value_and_grad(mean_loss))(params)


@pytest.fixture(scope="module")
def no_remat():
  return loss_and_grads(remat="none", scan_unroll=1)


@pytest.mark.parametrize("remat", ["full", "dots_saveable", "save_qkv"])
def test_remat_policies_keep_loss_and_gradients(no_remat, remat):
  assert_same_loss_and_grads(loss_and_grads(remat=remat), no_remat)


def test_unrolled_layers_keep_loss_and_gradients(no_remat):
  layers = train_fixtures.model_config().llm.num_layers
  assert layers > 1
  assert_same_loss_and_grads(loss_and_grads(scan_unroll=layers), no_remat)


def assert_same_loss_and_grads(got, want):
  (got_loss, got_grads), (want_loss, want_grads) = got, want
  np.testing.assert_allclose(float(got_loss), float(want_loss), rtol=1e-6)
  jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6),
               got_grads, want_grads)


def test_unknown_remat_policy_is_named():
  with pytest.raises(errors.UnknownNameError,
                     match="unknown remat policy 'some'; known: none, full, dots_saveable"):
    loss_and_grads(remat="some")


def compile_train(implementation):
  config = small_vlm_config()
  config.model.llm.attention = config.model.vision.attention = implementation
  return compiler.compile_step(config, "v5p-8", mesh={"data": 1, "fsdp": 4, "tensor": 1})


@pytest.fixture(scope="module")
def auto_report(libtpu_topologies):  # noqa: F811
  return compile_train("auto")


def test_auto_compiles_splash_for_tpu_on_a_cpu_host(auto_report):
  """Under `vlm-jax compile` the platform is the slice's, not the host's."""
  assert auto_report.compiled and auto_report.fits
  assert auto_report.kernel_calls > 0  # the splash kernels (forward, dq, dkv)
  assert compile_train("xla").kernel_calls == 0


def fake_compile(report, fitting_from, calls):
  """compile_step's stand-in: `report` for the config's microbatches, fitting from
  `fitting_from` of them; the counts asked for are appended to `calls`."""
  def compile_step(config, topology, **options):
    del topology, options
    calls.append(config.microbatches)
    return dataclasses.replace(report, fits=config.microbatches >= fitting_from,
                               sizes={**report.sizes, "microbatches": config.microbatches})
  return compile_step


@pytest.mark.parametrize("mesh, fitting_from, tried", [
    ({"tensor": 4, "fsdp": 1}, 4, [1, 2, 4]),  # batch 8 on one batch shard: up to 8
    ({"fsdp": 4}, 4, [1, 2]),  # 4 microbatches of 2 rows would not split over 4 shards
    ({"fsdp": 4}, 1, [1]),
])
def test_microbatch_search(auto_report, monkeypatch, mesh, fitting_from, tried):
  calls = []
  monkeypatch.setattr(compiler, "compile_step", fake_compile(auto_report, fitting_from, calls))
  reports = compiler.search_microbatches(configs.load(TINY_TRAIN), "v5p-8", mesh=mesh)
  assert calls == tried == [r.sizes["microbatches"] for r in reports]
  assert reports[-1].fits == (fitting_from in tried)


def test_compile_command_reports_the_smallest_fitting_count(auto_report, monkeypatch, capsys):
  monkeypatch.setattr(compiler, "compile_step", fake_compile(auto_report, 2, []))
  args = ["compile", "--config", TINY_TRAIN, "--topology", "v5p-8", "--mesh", "fsdp=4",
          "--search-microbatches"]
  assert cli.main(args) == 0
  out = capsys.readouterr().out
  assert "microbatches 1: peak per chip" in out and "does not fit" in out
  assert out.rstrip().endswith("smallest microbatch count that fits: 2 "
                               "(--set microbatches=2)")
  assert "Pallas kernel calls" in out
  monkeypatch.setattr(compiler, "compile_step", fake_compile(auto_report, 4, []))
  assert cli.main(args) == 3
  assert capsys.readouterr().out.rstrip().endswith("no microbatch count up to 2 fits")
  assert cli.main(args[:-1] + ["--step", "decode", "--search-microbatches"]) == 2
  assert "searches the train step" in capsys.readouterr().err
