"""The benchmarks run end to end on tiny models and write the JSON they promise.

No assertion on speed: only that the timings exist, are positive, and that the ratios
and FLOPs beside them are the ones the scripts say they are; and that the PyTorch model
the training-step benchmark times computes our loss.
"""
import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import numpy as np
import pytest
import torch

import hf_models
from vlm_jax import configs, flops, models
from vlm_jax.convert import rules
from vlm_jax.convert.mapping import fill, prefixed
from vlm_jax.train import loss

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks")
sys.path.insert(0, BENCHMARKS)
import decode  # noqa: E402
import profile_step  # noqa: E402
import torch_train  # noqa: E402
import train_step  # noqa: E402

TINY_VLM = "vlm:llm=tiny_llm:size=xs,vision=tiny_vision,compressor={}"


def _run(script, tmp_path, *args):
  out = tmp_path / "result.json"
  proc = subprocess.run(
      [sys.executable, os.path.join(BENCHMARKS, script), *args, "--repeats", "2",
       "--out", str(out)],
      capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.returncode == 0, proc.stderr[-4000:]
  return json.loads(out.read_text()), proc.stdout


def test_prefill_reports_speedup_beside_flops_ratio(tmp_path):
  spec, text_tokens = TINY_VLM.format("quecc"), 4
  result, stdout = _run("prefill.py", tmp_path, "--model", spec, "--budgets", "4,1",
                        "--text-tokens", str(text_tokens))
  assert result["full_tokens"] == 64  # tiny_vision: 64 px / 8 px patches = an 8x8 grid
  rows = {r["visual_tokens"]: r for r in result["rows"]}
  assert list(rows) == [1, 4, 64]
  full = rows[64]
  for v, row in rows.items():
    assert len(row["all_seconds"]) == 2 and min(row["all_seconds"]) > 0
    want = flops.inference_flops(configs.preset(f"{spec},budget={v}"), text_tokens)
    assert row["flops_total"] == want["total"]
    assert row["flops_ratio"] == pytest.approx(full["flops_total"] / want["total"])
    assert row["speedup"] == pytest.approx(full["seconds"] / row["seconds"])
    assert row["realized"] == pytest.approx(row["speedup"] / row["flops_ratio"])
  assert full["speedup"] == 1 and full["flops_ratio"] == 1
  assert rows[1]["flops_ratio"] > rows[4]["flops_ratio"] > 1
  assert "| 1 |" in stdout and result["device"] in stdout


def test_decode_reports_ours_beside_transformers(tmp_path):
  batches, new_tokens = (1, 3), 4
  result, stdout = _run("decode.py", tmp_path, "--model", "tiny_llm:size=xs", "--batches",
                        ",".join(map(str, batches)), "--prompt-tokens", "5",
                        "--new-tokens", str(new_tokens))
  assert result["transformers_model"] == "Qwen2ForCausalLM"
  assert result["torch_device"] == "cpu" and result["no_comparison"] is None
  assert [r["batch"] for r in result["rows"]] == list(batches)
  for row in result["rows"]:
    for name, seconds in row["seconds"].items():
      assert len(seconds) == 2 and min(seconds) > 0, name
    decoded = row["batch"] * (new_tokens - 1)
    assert row["ours_tokens_per_s"] == pytest.approx(decoded / row["ours_decode_s"])
    assert row["theirs_tokens_per_s"] == pytest.approx(decoded / row["theirs_decode_s"])
    assert row["ratio"] == pytest.approx(row["ours_tokens_per_s"] / row["theirs_tokens_per_s"])
    assert row["end_to_end_ratio"] > 0
  assert "decode ours/theirs" in stdout


def test_llava_side_generates_exactly_n_tokens_after_the_image():
  config = configs.preset(TINY_VLM.format("identity") + ",budget=64")
  model, why_not = decode.torch_model(config)
  assert why_not is None and type(model).__name__ == "LlavaForConditionalGeneration"
  ours, theirs = decode.prompts(config, batch=2, prompt_tokens=3)
  assert ours["input_ids"].shape == (2, 4) and theirs["input_ids"].shape == (2, 64 + 3)
  np.testing.assert_array_equal(ours["input_ids"][:, 1:], theirs["input_ids"][:, 64:])
  run, splits = decode.torch_generate(model, theirs, new_tokens=3)
  run()  # raises unless 3 tokens come out; transformers checks 64 placeholders per image
  assert len(splits) == 1 and min(splits[0]) > 0


def test_a_compressing_vlm_is_timed_alone():
  config = configs.preset(TINY_VLM.format("quecc") + ",budget=4")
  model, why_not = decode.torch_model(config)
  assert model is None and "quecc" in why_not


TINY_TRAIN = "configs/train/tiny.py:size=xs,stage=2,budget={}"


def test_train_step_reports_ours_beside_pytorch(tmp_path):
  spec, batch, text_tokens, peak_tflops = TINY_TRAIN.format(4), 2, 5, 0.5
  result, stdout = _run(
      "train_step.py", tmp_path, "--config", spec, "--batch", str(batch), "--text-tokens",
      str(text_tokens), "--peak-tflops", str(peak_tflops), "--torch-threads", "1")
  train_config = train_step.load_config(spec)
  config = train_config.model
  assert result["visual_tokens"] == 4 and result["trained"] == ["compressor", "llm", "projector"]
  assert (result["question_tokens"], result["answer_tokens"]) == (3, 2)
  per_example = flops.train_flops_per_example(config, text_tokens, train_llm=True,
                                              question_tokens=3)
  assert result["flops_per_example"] == pytest.approx(per_example)
  assert result["flops_per_step"] == pytest.approx(batch * per_example)
  for side in (result["ours"], result["plain_loss"], result["theirs"]):
    assert len(side["seconds"]) == 2 and min(side["seconds"]) > 0
    assert side["step_s"] == pytest.approx(np.median(side["seconds"]))
    assert side["tokens_per_s"] == pytest.approx(batch * (text_tokens + 4) / side["step_s"])
    assert side["mfu"] == pytest.approx(batch * per_example / side["step_s"] / 0.5e12)
    assert np.isfinite(side["final_loss"])
  theirs = result["theirs"]
  assert (theirs["device"], theirs["dtype"], theirs["attention"]) == ("cpu", "float32", "sdpa")
  assert result["ratio"] == pytest.approx(theirs["step_s"] / result["ours"]["step_s"])
  assert "theirs / ours step time" in stdout
  # the chunked loss (the default) beside the whole logits, which compute the same loss
  assert result["loss_chunk_size"] == train_config.loss_chunk_size > 0
  assert result["plain_loss"]["final_loss"] == pytest.approx(result["ours"]["final_loss"])
  assert result["chunked_ratio"] == pytest.approx(
      result["ours"]["step_s"] / result["plain_loss"]["step_s"])
  assert "(whole logits) step time" in stdout


def test_profile_step_groups_both_sides_op_time(tmp_path):
  result, stdout = _run("profile_step.py", tmp_path, "--config", TINY_TRAIN.format(4),
                        "--batch", "2", "--text-tokens", "5", "--torch-threads", "1")
  for side in ("ours", "theirs"):
    profiled = result["profiled"][side]
    assert set(profiled["groups"]) <= set(profile_step.GROUPS)
    assert profiled["groups"]["matmul"] > 0 and profiled["ops_per_step"] > 0
    # op time summed over threads may exceed the wall time, but not by more than the
    # threads there are (torch on 1, XLA's pool on the host's cores)
    assert sum(profiled["groups"].values()) < profiled["wall_s"] * (os.cpu_count() + 1)
  assert result["torch_threads"] == 1
  assert "| copy/layout |" in stdout and "| ops per step |" in stdout


@pytest.mark.parametrize("name, group", [
    ("ynn_fusion.12", "matmul"), ("dot.3", "matmul"), ("copy_bitcast_fusion.25", "copy/layout"),
    ("transpose.1", "copy/layout"), ("gather.2", "gather/scatter"),
    ("add_divide_fusion", "other"), ("while.1", None), ("ThreadpoolListener::Record", None)])
def test_xla_ops_are_grouped_by_name(name, group):
  assert profile_step.xla_group(name) == group


@pytest.mark.parametrize("name, group", [
    ("aten::mm", "matmul"), ("aten::_scaled_dot_product_flash_attention_for_cpu", "matmul"),
    ("aten::copy_", "copy/layout"), ("aten::index_select", "gather/scatter"),
    ("aten::mul", "other")])
def test_torch_ops_are_grouped_by_name(name, group):
  assert profile_step.torch_group(name) == group


def test_pytorch_side_computes_our_loss_and_trains_only_the_trained_groups():
  # 8x8 grid -> 3x3 adaptive regions of sides 3, 4, 3: QueCC's masked taps and attention.
  config = train_step.load_config(TINY_TRAIN.format(9))
  model_config = config.model
  step, model = torch_train.make_step(model_config, config.optim, torch.device("cpu"),
                                      torch.float32, trained=("compressor", "projector", "llm"))
  hf_models.randomize(model, seed=1, std=0.5).train()  # big enough for the image to matter
  state = {n: t.detach().numpy() for n, t in model.state_dict().items()}
  name_rules = {
      **prefixed(rules.llm_rules(model_config.llm), ("llm",), "llava.model.language_model."),
      **prefixed(rules.lm_head_rules(model_config.llm), ("llm",), "llava."),
      **prefixed(rules.vision_rules(model_config.vision), ("vision",), "llava.model.vision_tower."),
      **prefixed(rules.quecc_rules(), ("compressor",), "compressor."),
      **prefixed(rules.projector_rules(), ("projector",), "llava.model.multi_modal_projector.")}
  params = fill(nn.unbox(models.abstract_params(model_config)), name_rules, state.__getitem__)
  ours, theirs = train_step.examples(model_config, batch=2, text_tokens=6)
  total, count = jax.jit(lambda p, b: loss.vlm_loss(
      models.build(model_config), p, b, model_config.image_token_id, jax.random.PRNGKey(0)))(
          params, ours)
  batch = {k: torch.from_numpy(x).long() if x.dtype.kind == "i" else torch.from_numpy(x)
           for k, x in theirs.items()}
  with torch.no_grad():
    want = float(model(**batch))
  assert int(count) == 2 * 3
  np.testing.assert_allclose(float(total) / int(count), want, rtol=1e-5)

  before = {g: [p.detach().clone() for p in ps] for g, ps in model.groups().items()}
  step(batch)
  moved = {g: any(not torch.equal(p, q) for p, q in zip(ps, before[g]))
           for g, ps in model.groups().items()}
  assert moved == dict(vision=False, compressor=True, projector=True, llm=True)


def test_eval_dtype_reports_bfloat16_answers_and_speed_beside_float32(tmp_path):
  result, stdout = _run("eval_dtype.py", tmp_path, "--steps", "2", "--questions", "8",
                        "--batch", "8", "--workdir", str(tmp_path / "work"))
  rows = {r["dtype"]: r for r in result["rows"]}
  assert list(rows) == ["float32", "bfloat16"]
  assert rows["float32"]["equal_to_float32"] == rows["float32"]["answered"] == 8
  assert 0 <= rows["bfloat16"]["equal_to_float32"] <= 8
  for row in rows.values():
    assert len(row["all_questions_per_s"]) == 2 and min(row["all_questions_per_s"]) > 0
    assert row["fraction_equal_to_float32"] == row["equal_to_float32"] / 8
  assert result["bfloat16_speedup"] == pytest.approx(
      rows["bfloat16"]["questions_per_s"] / rows["float32"]["questions_per_s"])
  assert "answers equal to float32" in stdout
