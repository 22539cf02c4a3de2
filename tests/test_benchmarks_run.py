"""The inference benchmarks run end to end on tiny models and write the JSON they promise.

No assertion on speed: only that the timings exist, are positive, and that the ratios
and FLOPs beside them are the ones the scripts say they are.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vlm_jax import configs, flops

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks")
sys.path.insert(0, BENCHMARKS)
import decode  # noqa: E402

TINY_VLM = "vlm:llm=tiny_llm:size=xs,vision=tiny_vision,compressor={}"


def _run(script, tmp_path, *args):
  out = tmp_path / "result.json"
  proc = subprocess.run(
      [sys.executable, os.path.join(BENCHMARKS, script), *args, "--repeats", "2",
       "--out", str(out)],
      capture_output=True, text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
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
