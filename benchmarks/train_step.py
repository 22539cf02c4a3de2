"""One training step of a VLM in vlm_jax beside the same step in PyTorch, same device.

The step of a training config (configs/train/): forward, loss on the answer tokens,
backward, clipping and AdamW over the trained groups (compressor, projector and, in
stage 2, the LLM), the vision tower frozen. Ours: vlm_jax.train's jitted step on one
device, float32 params computing in the model's dtype (--dtype), learning rates on the
config's schedule. Theirs (torch_train.py): transformers LlavaForConditionalGeneration
with the same dims, SDPA attention, a PyTorch QueCC doing QueCC's work as ours does it,
torch.optim.AdamW at each group's peak learning rate, on CUDA when available
(--torch-dtype). Random params, pixels and ids; each example is an image then T text
tokens, the first ceil(T/2) the question (QueCC's query pass), the rest the answer; one
pass over the batch (no microbatches); the checkpoints and data the config names are
not read (paper.py's stage 2 still wants some stage1=). Where the config's loss runs in
chunks (loss_chunk_size, the default), our step is also timed with the whole logits at
once (loss_chunk_size=0) as the chunked loss's reference. Timings interleaved after a
warm-up, median of --repeats. MFU = vlm_jax.flops.train_flops_per_example x batch /
step time / the device's peak FLOP/s (vlm_jax.train.metrics' dense bfloat16 peaks by
device kind, or --peak-tflops; none known for a CPU).

  python benchmarks/train_step.py --out train_step.json
  python benchmarks/train_step.py --config configs/train/paper.py:llm=qwen1_5_1_8b,\\
vision=siglip_so400m_14_384,budget=16,stage=2,stage1=unused --batch 16 --text-tokens 512 \\
      --out train_step.json
"""
import argparse
import math
import os
import statistics
import sys

import common

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join("configs", "train", "tiny.py") + ":size=s,budget=16,stage=2"


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default=DEFAULT_CONFIG,
                      help="training config file and its argument (a relative path is "
                      "looked up from here, then from the repository)")
  add_override_argument(parser)
  parser.add_argument("--batch", type=int, default=8, help="examples per step")
  parser.add_argument("--text-tokens", type=int, default=64,
                      help="text tokens T per example: question, then answer")
  parser.add_argument("--dtype", choices=("float32", "bfloat16"),
                      help="compute dtype (default: the config model's)")
  parser.add_argument("--torch-dtype", choices=("float32", "bfloat16"),
                      help="PyTorch's compute dtype (default: --dtype on CUDA, float32 on a "
                      "CPU, where torch's bfloat16 autocast ran slower than its float32)")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--torch-threads", type=int,
                      help="torch's CPU threads (default: torch's own choice)")
  parser.add_argument("--peak-tflops", type=float,
                      help="peak TFLOP/s of one device for MFU (default: by device kind)")
  parser.add_argument("--no-plain-loss", dest="plain_loss", action="store_false",
                      help="do not time our step with the whole logits beside the chunked "
                      "loss (one training state less on the device)")
  parser.add_argument("--out", help="write the numbers here as JSON")
  return parser.parse_args(argv)


def add_override_argument(parser):
  parser.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help="override a training config field, e.g. "
                      "--set model.llm.remat=none (repeatable)")


def config_label(result):
  """The config spec and its --set overrides, as a report's header names them."""
  return " ".join([result["config"]] + result["overrides"])


def load_config(spec, overrides=(), dtype=None):
  """The resolved training config `spec` names, with `overrides` (KEY=VALUE) applied and
  its model computing in `dtype` (default: its own)."""
  from vlm_jax import configs, train

  path, sep, arg = spec.partition(":")
  if not os.path.exists(path) and os.path.exists(os.path.join(REPO, path)):
    path = os.path.join(REPO, path)
  config = train.resolve(train.apply_overrides(configs.load(path + sep + arg), overrides))
  if dtype:
    config.model.dtype = dtype
  if config.optim.learning_rates.vision > 0:
    raise ValueError(f"{spec} trains the vision tower; this benchmark times steps with the "
                     "tower frozen (stage 1 or 2)")
  return config


def visual_tokens(model_config):
  from vlm_jax import compressors
  from vlm_jax.models import vision as vision_lib
  h, w = compressors.grid_shape(model_config.compressor, vision_lib.grid_size(model_config.vision))
  return h * w


def examples(model_config, batch, text_tokens, seed=0):
  """Ours (the image placeholder, then T text ids) and PyTorch's (text ids, NCHW pixels).

  Question: the first ceil(T/2) text ids; answer (labelled): the rest.
  """
  import numpy as np

  rng = np.random.default_rng(seed)
  text = rng.integers(1, model_config.llm.vocab_size, (batch, text_tokens)).astype(np.int32)
  question = text[:, :math.ceil(text_tokens / 2)]
  labels = np.where(np.arange(text_tokens) >= question.shape[1], text, -100).astype(np.int32)
  v = model_config.vision
  pixels = rng.normal(size=(batch, v.image_size, v.image_size, v.num_channels)).astype(np.float32)
  column = lambda value: np.full((batch, 1), value, np.int32)
  ours = dict(input_ids=np.concatenate([column(model_config.image_token_id), text], axis=1),
              labels=np.concatenate([column(-100), labels], axis=1),
              attention_mask=np.ones((batch, text_tokens + 1), np.int32), pixels=pixels,
              question_ids=question, question_mask=np.ones_like(question))
  theirs = dict(pixels=pixels.transpose(0, 3, 1, 2), input_ids=text, labels=labels,
                question_ids=question, question_mask=np.ones_like(question))
  return ours, theirs


def our_step(config, host_batch, mesh):
  """-> (run: one blocking training step, losses: each run's loss), vlm_jax on `mesh`."""
  import jax

  from vlm_jax import models, sharding
  from vlm_jax.train import batches
  from vlm_jax.train import state as state_lib
  from vlm_jax.train import step as step_lib

  model_config = config.model
  train_setup = step_lib.setup(model_config, config.optim, config.total_steps or 1000, mesh)
  shardings = train_setup.shardings
  options = dict(config.compiler_options) or None
  params = common.random_like(lambda rng: models.init(model_config, rng), "float32")
  with sharding.activate(mesh):  # the logical axis rules apply while tracing
    state = state_lib.create(jax.device_put(params, shardings.params), train_setup.tx,
                             jax.random.PRNGKey(config.seed), shardings, options)
    batch = batches.global_batch(host_batch, mesh)
    step = step_lib.jitted_step(model_config, train_setup, mesh, microbatches=1,
                                loss_chunk_size=config.loss_chunk_size,
                                compiler_options=options).lower(state, batch).compile()
  losses = []

  def run():
    nonlocal state
    state, metrics = jax.block_until_ready(step(state, batch))
    losses.append(float(metrics["loss"]))

  return run, losses


def their_step(config, host_batch, dtype=None, threads=None):
  """-> (run, losses, description of the PyTorch side), or (None, None, why there is none).

  dtype: the compute dtype (default: the model's on CUDA, float32 on a CPU).
  """
  import torch_train
  why_not = torch_train.no_counterpart(config.model)
  if why_not:
    return None, None, why_not
  import torch

  if threads is not None:
    torch.set_num_threads(threads)
  device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  dtype = dtype or (config.model.dtype if device.type == "cuda" else "float32")
  torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
  trained = [g for g, lr in config.optim.learning_rates.items() if lr > 0]
  step, model = torch_train.make_step(config.model, config.optim, device, torch_dtype, trained)
  batch = {k: torch.from_numpy(x).to(device, torch.long if x.dtype.kind == "i" else None)
           for k, x in host_batch.items()}
  losses = []

  def run():
    losses.append(float(step(batch).detach()))

  kind = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
  return run, losses, dict(
      device=str(device), device_kind=kind, dtype=dtype,
      autocast=torch_dtype != torch.float32, threads=torch.get_num_threads(),
      model=f"transformers {type(model.llava).__name__} + "
            + (f"PyTorch {type(model.compressor).__name__}" if model.compressor else "identity"),
      attention=model.llava.config._attn_implementation, optimizer="torch.optim.AdamW")


def rates(seconds, losses, tokens, step_flops, peak):
  """The timed side's figures: median step, tokens/s, FLOP/s, MFU (None without a peak)."""
  step_s = statistics.median(seconds)
  return dict(step_s=step_s, seconds=seconds, tokens_per_s=tokens / step_s,
              flops_per_s=step_flops / step_s,
              mfu=step_flops / step_s / peak if peak else None, final_loss=losses[-1])


def main(argv=None):
  args = parse_args(argv)
  if args.batch < 1 or args.text_tokens < 2:
    raise ValueError("need --batch >= 1 and --text-tokens >= 2 (a question and an answer)")
  if args.repeats < 1:
    raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
  # Both models live on the device at once: JAX must not take most of a GPU's memory up front.
  os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  import jax

  from vlm_jax import flops, sharding
  from vlm_jax.train import metrics

  config = load_config(args.config, args.overrides, args.dtype)
  model_config, rates_by_group = config.model, config.optim.learning_rates
  trained = [g for g, lr in rates_by_group.items() if lr > 0]
  v = visual_tokens(model_config)
  ours_batch, theirs_batch = examples(model_config, args.batch, args.text_tokens)
  question_tokens = ours_batch["question_ids"].shape[1]
  per_example = float(flops.train_flops_per_example(
      model_config, args.text_tokens, train_llm=rates_by_group.llm > 0,
      question_tokens=question_tokens))
  step_flops, tokens = args.batch * per_example, args.batch * (args.text_tokens + v)
  override = args.peak_tflops * 1e12 if args.peak_tflops else None
  device = jax.devices()[0]
  peak = metrics.peak_flops_per_device(device.device_kind, override)

  calls, losses = {}, {}
  mesh = sharding.make_mesh(1, 1, 1, [device])
  calls["ours"], losses["ours"] = our_step(config, ours_batch, mesh)
  if config.loss_chunk_size and args.plain_loss:
    plain = config.copy_and_resolve_references()
    plain.loss_chunk_size = 0
    calls["plain_loss"], losses["plain_loss"] = our_step(plain, ours_batch, mesh)
  run, theirs_losses, torch_side = their_step(config, theirs_batch, args.torch_dtype,
                                              args.torch_threads)
  if run is not None:
    calls["theirs"], losses["theirs"] = run, theirs_losses
  seconds = common.time_interleaved(calls, args.repeats)

  result = dict(
      benchmark="train_step", config=args.config, overrides=args.overrides,
      dtype=model_config.dtype, batch=args.batch, text_tokens=args.text_tokens,
      question_tokens=question_tokens, answer_tokens=args.text_tokens - question_tokens,
      visual_tokens=v,
      compressor=model_config.compressor.name, llm_params=flops.llm_params(model_config),
      trained=trained, remat=model_config.llm.remat, loss_chunk_size=config.loss_chunk_size,
      repeats=args.repeats,
      flops_per_example=per_example, flops_per_step=step_flops, tokens_per_step=tokens,
      device=common.jax_device(), device_kind=device.device_kind, peak_flops_per_s=peak,
      load_average=common.load_average(),
      ours=rates(seconds["ours"], losses["ours"], tokens, step_flops, peak),
      plain_loss=None, chunked_ratio=None)
  if "plain_loss" in calls:
    result["plain_loss"] = rates(seconds["plain_loss"], losses["plain_loss"], tokens, step_flops,
                                 peak)
    result["chunked_ratio"] = result["ours"]["step_s"] / result["plain_loss"]["step_s"]
  if run is None:
    result.update(theirs=None, no_comparison=torch_side, ratio=None)
  else:
    torch_peak = metrics.peak_flops_per_device(torch_side["device_kind"], override)
    result.update(theirs=dict(torch_side, peak_flops_per_s=torch_peak, **rates(
        seconds["theirs"], losses["theirs"], tokens, step_flops, torch_peak)),
        no_comparison=None)
    result["ratio"] = result["theirs"]["step_s"] / result["ours"]["step_s"]
  report(result)
  common.write_json(args.out, result)
  return 0


def report(result):
  theirs = result["theirs"]
  print(f"Training step, {config_label(result)} "
        f"({result['dtype']}), batch {result['batch']}, "
        f"T = {result['text_tokens']} text ({result['question_tokens']} question, "
        f"{result['answer_tokens']} answer) + V = {result['visual_tokens']} visual tokens, "
        f"training {', '.join(result['trained'])}, median of {result['repeats']}.")
  print(f"ours: vlm_jax jitted train step on {result['device']}; theirs: "
        + (result["no_comparison"] if theirs is None else
           f"{theirs['model']} ({theirs['attention']} attention, {theirs['optimizer']}) on "
           f"torch {theirs['device']}"
           + (f" ({theirs['device_kind']})" if theirs["device"] != "cpu" else "")
           + f", {theirs['threads']} threads, {theirs['dtype']}"
           + (" autocast over float32 params" if theirs["autocast"] else "")) + ".")
  peak = result["peak_flops_per_s"]
  print(f"{result['flops_per_step'] / 1e9:.4g} GFLOPs per step (vlm_jax.flops); MFU against "
        + (f"{peak / 1e12:.4g} TFLOP/s peak per device" if peak else
           f"no known peak for {result['device_kind']!r} (give --peak-tflops): n/a") + ".\n")
  sides = ([("ours", result["ours"])]
           + ([("ours, whole logits", result["plain_loss"])] if result["plain_loss"] else [])
           + ([("theirs", theirs)] if theirs else []))
  mfu = lambda r: "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f} %"
  print(common.markdown_table(
      ["", "step (ms)", "tokens/s", "GFLOP/s", "MFU", "last loss"],
      [[name, f"{r['step_s'] * 1e3:.2f}", f"{r['tokens_per_s']:,.0f}",
        f"{r['flops_per_s'] / 1e9:.4g}", mfu(r), f"{r['final_loss']:.4f}"] for name, r in sides]))
  if result["plain_loss"]:
    print(f"\nours (loss in chunks of {result['loss_chunk_size']} positions) / ours (whole "
          f"logits) step time: {result['chunked_ratio']:.2f}")
  if theirs:
    print(f"\ntheirs / ours step time: {result['ratio']:.2f}")


if __name__ == "__main__":
  sys.exit(main())
