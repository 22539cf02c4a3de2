"""Decoded tokens/s of our Generator beside `transformers` generate, same architecture and device.

Greedy, a fixed number N of new tokens (no EOS), random weights and prompts. Ours: the
jitted decode loop timed after the prefill (which emits the first token), so
B·(N − 1) tokens in the decode time. Theirs: generate(max_new_tokens=min_new_tokens=N)
split where its first new token is out (a stopping criterion's first call), the same
B·(N − 1) tokens after it. Both end to end (prefill + decode, B·N tokens) too.
`--model` takes an LLM preset or a VLM spec; a VLM is compared with
LlavaForConditionalGeneration when its compressor is the identity, otherwise only
ours is timed. The torch model runs on CUDA when available.

  python benchmarks/decode.py --out decode.json
  python benchmarks/decode.py --model qwen1_5_0_5b --batches 1,32 --dtype bfloat16 --out decode.json
"""
import argparse
import statistics
import sys
import time

import common


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="tiny_llm:size=s", help="LLM preset or VLM spec")
  parser.add_argument("--batches", default="1,32", help="batch sizes")
  parser.add_argument("--prompt-tokens", type=int, default=64, help="text tokens per prompt")
  parser.add_argument("--new-tokens", type=int, default=64, help="N tokens generated")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--torch-threads", type=int,
                      help="torch's CPU threads (default: torch's own choice)")
  parser.add_argument("--out", help="write the numbers here as JSON")
  return parser.parse_args(argv)


def visual_tokens(config):
  """V the VLM `config` splices in per image (0 for an LLM)."""
  if config.kind != "vlm":
    return 0
  from vlm_jax.compressors import regions
  from vlm_jax.models import vision as vision_lib
  h, w = regions.grid_shape(config.compressor, vision_lib.grid_size(config.vision))
  return h * w


def torch_model(config, threads=None):
  """-> (the same architecture in `transformers`, random weights, in the compute dtype, on
  CUDA when available; None) or (None, why there is none). threads: torch's CPU threads."""
  if config.kind == "vlm" and config.compressor.name != "identity":
    return None, (f"no transformers equivalent of a VLM with compressor "
                  f"{config.compressor.name!r}: only ours is timed")
  import torch
  import transformers

  from vlm_jax.convert import hf_config

  if threads is not None:
    torch.set_num_threads(threads)
  hf = hf_config.to_hf(config)
  if config.kind == "vlm":
    hf.image_token_id = config.llm.vocab_size - 1  # ours is -200, outside any vocabulary
    model = transformers.LlavaForConditionalGeneration(hf)
  else:
    model = transformers.AutoModelForCausalLM.from_config(hf)
  device = "cuda" if torch.cuda.is_available() else "cpu"
  dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[config.dtype]
  model = model.to(device=device, dtype=dtype).eval()
  model.generation_config.eos_token_id = None
  model.generation_config.pad_token_id = 0
  return model, None


def describe_torch(model):
  """The results' fields on the `transformers` side (None without one)."""
  if model is None:
    return dict.fromkeys(("torch_device", "torch_threads", "transformers_model",
                          "transformers_attention"))
  import torch
  return dict(torch_device=str(model.device), torch_threads=torch.get_num_threads(),
              transformers_model=type(model).__name__,
              transformers_attention=model.config._attn_implementation)


def prompts(config, batch, prompt_tokens, seed=0):
  """Our inputs (an image placeholder first for a VLM, the question = the text) and the
  `transformers` ones (the placeholder repeated V times, NCHW pixels)."""
  import numpy as np

  rng = np.random.default_rng(seed)
  # The top id stays free: the transformers LLaVA's image placeholder.
  text = rng.integers(1, config.llm.vocab_size - 1, (batch, prompt_tokens))
  if config.kind == "llm":
    inputs = dict(input_ids=text, attention_mask=np.ones_like(text))
    return inputs, dict(inputs)
  v = config.vision
  pixels = rng.normal(size=(batch, v.image_size, v.image_size, v.num_channels))
  ids = np.concatenate([np.full((batch, 1), config.image_token_id), text], axis=1)
  ours = dict(input_ids=ids, attention_mask=np.ones_like(ids), pixels=pixels)
  if config.compressor.name == "quecc":
    ours.update(question_ids=text, question_mask=np.ones_like(text))
  hf_ids = np.concatenate(
      [np.full((batch, visual_tokens(config)), config.llm.vocab_size - 1), text], axis=1)
  theirs = dict(input_ids=hf_ids, attention_mask=np.ones_like(hf_ids),
                pixel_values=pixels.transpose(0, 3, 1, 2).astype(np.float32))
  return ours, theirs


def torch_generate(model, inputs, new_tokens):
  """-> (run, splits): run() is one blocking greedy generate of exactly `new_tokens` tokens
  and appends its (prefill with the first token, rest) seconds to `splits`.

  The split is the first call of a stopping criterion, which generate makes once the
  first new token is out.
  """
  import torch
  import transformers

  device, dtype = model.device, model.dtype
  tensors = {k: torch.from_numpy(v).to(device, dtype if k == "pixel_values" else torch.long)
             for k, v in inputs.items()}
  splits = []

  class Clock(transformers.StoppingCriteria):
    def __init__(self):
      self.times = []

    def __call__(self, input_ids, scores, **kwargs):
      if input_ids.is_cuda:
        torch.cuda.synchronize()
      self.times.append(time.perf_counter())
      return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

  def run():
    clock = Clock()
    start = time.perf_counter()
    with torch.inference_mode():
      out = model.generate(**tensors, do_sample=False, max_new_tokens=new_tokens,
                           min_new_tokens=new_tokens,
                           stopping_criteria=transformers.StoppingCriteriaList([clock]))
    out = out.cpu()
    end = time.perf_counter()
    if out.shape[1] != inputs["input_ids"].shape[1] + new_tokens or len(clock.times) != new_tokens:
      raise RuntimeError(f"transformers generated {out.shape[1] - inputs['input_ids'].shape[1]} "
                         f"tokens, not {new_tokens}")
    splits.append((clock.times[0] - start, end - clock.times[0]))

  return run, splits


def measure(generator, params, model, config, batch, args):
  """Interleaved timings at one batch size -> the row of the results."""
  import jax

  ours_inputs, theirs_inputs = prompts(config, batch, args.prompt_tokens)
  inputs = jax.device_put(generator.prepare(**ours_inputs))
  rng = jax.random.PRNGKey(0)
  # decode donates the state it is given: one of its own for each call, made untimed.
  states = jax.block_until_ready(
      [generator.prefill(params, inputs, rng) for _ in range(args.repeats + 1)])
  calls = dict(
      ours_prefill=lambda: jax.block_until_ready(generator.prefill(params, inputs, rng)),
      ours_decode=lambda: jax.block_until_ready(generator.decode(params, states.pop())))
  if model is not None:
    calls["theirs"], splits = torch_generate(model, theirs_inputs, args.new_tokens)
  seconds = common.time_interleaved(calls, args.repeats)
  if model is not None:  # the timed runs, after the warm-up's
    prefill_s, decode_s = zip(*splits[-args.repeats:])
    seconds.update(theirs_prefill=list(prefill_s), theirs_decode=list(decode_s))
  med = {name: statistics.median(s) for name, s in seconds.items()}
  decoded, total = batch * (args.new_tokens - 1), batch * args.new_tokens
  row = dict(batch=batch, seconds=seconds,
             ours_prefill_s=med["ours_prefill"], ours_decode_s=med["ours_decode"],
             ours_tokens_per_s=decoded / med["ours_decode"],
             ours_end_to_end_tokens_per_s=total / (med["ours_prefill"] + med["ours_decode"]))
  if model is not None:
    row.update(theirs_prefill_s=med["theirs_prefill"], theirs_decode_s=med["theirs_decode"],
               theirs_tokens_per_s=decoded / med["theirs_decode"],
               theirs_end_to_end_tokens_per_s=total / med["theirs"])
    row.update(ratio=row["ours_tokens_per_s"] / row["theirs_tokens_per_s"],
               end_to_end_ratio=(row["ours_end_to_end_tokens_per_s"]
                                 / row["theirs_end_to_end_tokens_per_s"]))
  return row


def main(argv=None):
  args = parse_args(argv)
  batches = common.parse_ints(args.batches)
  if args.new_tokens < 2 or args.prompt_tokens < 1:
    raise ValueError("need --new-tokens >= 2 (the first comes from the prefill) and "
                     "--prompt-tokens >= 1")
  from vlm_jax.generate import Generator

  config = common.model_config(args.model, args.dtype)
  params = common.random_params(config)
  model, no_comparison = torch_model(config, args.torch_threads)
  generator = Generator(config, max_new_tokens=args.new_tokens, eos_id=None,
                        prompt_buckets=None)
  rows = [measure(generator, params, model, config, b, args) for b in batches]
  result = dict(
      benchmark="decode", model=args.model, kind=config.kind, dtype=args.dtype,
      prompt_tokens=args.prompt_tokens, visual_tokens=visual_tokens(config),
      new_tokens=args.new_tokens, repeats=args.repeats, device=common.jax_device(),
      load_average=common.load_average(), **describe_torch(model),
      no_comparison=no_comparison, rows=rows)

  print(f"Decode, {args.model} ({args.dtype}), prompt {args.prompt_tokens} text"
        + (f" + {result['visual_tokens']} visual" if config.kind == "vlm" else "")
        + f" tokens, {args.new_tokens} new tokens, median of {args.repeats}.")
  print(f"ours: vlm_jax Generator on {result['device']}; theirs: "
        + (no_comparison if model is None else
           f"transformers {result['transformers_model']}.generate "
           f"({result['transformers_attention']} attention) on torch {result['torch_device']}, "
           f"{result['torch_threads']} threads")
        + ". Decode tokens/s exclude the prefill and its first token.\n")
  header = ["batch", "ours prefill (ms)", "ours decode tok/s", "ours end-to-end tok/s"]
  if model is not None:
    header += ["theirs prefill (ms)", "theirs decode tok/s", "theirs end-to-end tok/s",
               "decode ours/theirs", "end-to-end ours/theirs"]
  table = []
  for r in rows:
    cells = [r["batch"], f"{r['ours_prefill_s'] * 1e3:.2f}", f"{r['ours_tokens_per_s']:.1f}",
             f"{r['ours_end_to_end_tokens_per_s']:.1f}"]
    if model is not None:
      cells += [f"{r['theirs_prefill_s'] * 1e3:.2f}", f"{r['theirs_tokens_per_s']:.1f}",
                f"{r['theirs_end_to_end_tokens_per_s']:.1f}", f"{r['ratio']:.2f}",
                f"{r['end_to_end_ratio']:.2f}"]
    table.append(cells)
  print(common.markdown_table(header, table))
  common.write_json(args.out, result)
  return 0


if __name__ == "__main__":
  sys.exit(main())
