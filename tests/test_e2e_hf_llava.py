"""A user's chain on a llava-hf download: `vlm-jax convert`, then `vlm-jax eval` on TextVQA
with nothing but the checkpoint, answers equal to transformers' own.

The download (tests/user_folders.py) holds a LlavaForConditionalGeneration (CLIP tower,
Qwen2 or Llama LLM, random weights), a trained byte-level BPE tokenizer with `<image>`,
`<|im_start|>`, `<|im_end|>` and a chatml chat template (its own system line, so a
built-in template would not do), and the LlavaProcessor's files (CLIP preprocessing).
The eval names no tokenizer or template: the converted checkpoint must carry the
download's tokenizer, chat template, image preprocessing and image token.

transformers' answer: the processor's chat template over [image, prompt] with the
generation prompt, processor(images, text), greedy `generate` for the benchmark's
max_new_tokens stopping at eos or `<|im_end|>` (the harness stops on the tokenizer's eos
and the template's end of turn), the new tokens decoded without special tokens, stripped.
"""
import json
import os
import pathlib
import re

import pytest
from PIL import Image

import user_folders
from vlm_jax.evaluate.benchmarks import textvqa  # noqa: F401  (registers the benchmark)
from vlm_jax.evaluate.registry import BENCHMARKS

REPO = pathlib.Path(__file__).resolve().parent.parent
EVAL_CONFIG = REPO / "configs" / "eval" / "llava_1_5.py"
MAX_NEW_TOKENS = BENCHMARKS.get("textvqa").max_new_tokens


def eval_args(root, checkpoint, workdir, *extra):
  return ["eval", "--config", f"{EVAL_CONFIG}:root={root},benchmarks=textvqa",
          "--checkpoints", checkpoint, "--workdir", workdir, *extra]


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
  """(eval root, [(question_id, image path, prompt)]) of the tiny non-square TextVQA."""
  root = tmp_path_factory.mktemp("eval_data")
  return root, user_folders.textvqa_folder(str(root))


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def downloaded(request, tmp_path_factory):
  return user_folders.llava_hf_folder(tmp_path_factory.mktemp(f"llava_{request.param}"),
                                      family=request.param)


@pytest.fixture(scope="module")
def reference(downloaded, benchmark):
  """{question_id: (answer text, new token ids)} from transformers."""
  return {qid: user_folders.hf_llava_answer(downloaded, Image.open(image), prompt,
                                            MAX_NEW_TOKENS)
          for qid, image, prompt in benchmark[1]}


@pytest.fixture(scope="module")
def converted(downloaded, tmp_path_factory):
  return user_folders.converted(downloaded.path, tmp_path_factory.mktemp("converted") / "llava")


@pytest.fixture(scope="module")
def evaluated(converted, benchmark, tmp_path_factory):
  """(status, workdir) of `vlm-jax eval` at the checkpoint's own budget."""
  workdir = tmp_path_factory.mktemp("eval_run")
  return user_folders.run_cli(eval_args(benchmark[0], converted, workdir)), workdir


def test_the_reference_exercises_stopping(downloaded, reference):
  """The transformers side stops early at least once (eos or `<|im_end|>`), and never
  emits `<image>` (which would make the comparison hinge on a generated placeholder)."""
  stops = set(user_folders.stop_ids(downloaded.tokenizer))
  image_id = downloaded.model.config.image_token_index
  ends = [ids[-1] in stops and len(ids) < MAX_NEW_TOKENS for _, ids in reference.values()]
  assert any(ends)
  assert all(image_id not in ids for _, ids in reference.values())
  assert any(text for text, _ in reference.values())


def test_convert_writes_a_checkpoint(converted, downloaded):
  with open(os.path.join(converted, "config.json")) as f:
    config = json.load(f)
  assert config["kind"] == "vlm" and config["compressor"]["name"] == "identity"
  assert config["llm"]["vocab_size"] == downloaded.model.config.text_config.vocab_size
  assert config["llm"]["family"] == downloaded.family


def test_eval_answers_equal_transformers(evaluated, converted, benchmark, reference):
  status, workdir = evaluated
  assert status == 0
  rows = [r for r in json.loads((workdir / "results.json").read_text())
          if r["checkpoint"] == converted and r["benchmark"] == "textvqa"]
  assert len(rows) == 1
  assert rows[0]["n_scored"] == len(benchmark[1]) and rows[0]["n_skipped"] == 0
  answers = {a["question_id"]: a for a in user_folders.read_jsonl(rows[0]["answers_file"])}
  assert sorted(answers) == sorted(qid for qid, _, _ in benchmark[1])
  for qid, _, prompt in benchmark[1]:
    assert answers[qid]["prompt"] == prompt
  assert {qid: a["text"] for qid, a in answers.items()} == {
      qid: text for qid, (text, _) in reference.items()}


def test_a_tokenizer_larger_than_the_embedding_is_refused(
    converted, downloaded, benchmark, tmp_path, capsys, caplog):
  vocab_size = downloaded.model.config.text_config.vocab_size
  bigger = user_folders.bigger_tokenizer(downloaded.tokenizer, vocab_size + 5,
                                         tmp_path / "bigger_tokenizer")
  status = user_folders.run_cli(eval_args(benchmark[0], converted, tmp_path / "run", "--set",
                                          f"data.tokenizer={bigger}"))
  assert status == 2
  captured = capsys.readouterr()
  message = captured.out + captured.err + caplog.text
  for size in (vocab_size + 5, vocab_size):
    assert re.search(rf"\b{size}\b", message), f"{size} not named in: {message}"
  assert not (tmp_path / "run" / "results.json").exists()
