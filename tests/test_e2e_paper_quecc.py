"""A user's chain on the paper's LLaVA-QueCC checkpoints: `vlm-jax convert --vision-tower
--kv-layers`, then `vlm-jax eval` on TextVQA, answers equal to the paper's model in PyTorch.

Two checkpoints of one LLM and CLIP tower (6 x 6 grid) at V = 4 and V = 1 (QueCC
kernels 3 and 6), laid out as the paper's training writes them (LlavaQwenForCausalLM
config.json with image_aspect_ratio "pad", `model.*` LLM tensors,
`model.mm_projector.{0,1,3}`, two safetensors shards), each with its Qwen-style tokenizer
files; the CLIP folder holds the tower and its preprocessor_config.json. The eval names
no tokenizer or template: the checkpoint's own are used.

The reference (user_folders.PaperReference) is assembled from the paper's modules:
LLaVA's `pad` preprocessing (expand2square with the processor's mean colour, then the
CLIP processor), CLIPVisionModel hidden states, TorchQueCC with the LLM's query vector
over the question, the projector, Qwen2ForCausalLM, greedy decoding recomputing the
whole sequence each step, stopping at eos or `<|im_end|>`. Its prompt is the paper's
conversation mode for Qwen: the paper's repository (locuslab/llava-token-compression,
llava/conversation.py as stored) defines no Qwen template, so this is chatml with Qwen's
system line (user_folders.PAPER_QWEN_PROMPT).
"""
import json
import os
import pathlib

import pytest
import transformers
from PIL import Image

import user_folders
from vlm_jax.evaluate.benchmarks import textvqa  # noqa: F401  (registers the benchmark)
from vlm_jax.evaluate.registry import BENCHMARKS

REPO = pathlib.Path(__file__).resolve().parent.parent
EVAL_CONFIG = REPO / "configs" / "eval" / "llava_1_5.py"
MAX_NEW_TOKENS = BENCHMARKS.get("textvqa").max_new_tokens
KV_LAYERS = (2, 3)
KERNELS = {4: 3, 1: 6}  # V -> QueCC kernel on the 6 x 6 grid


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
  root = tmp_path_factory.mktemp("paper")
  return user_folders.paper_quecc_folders(str(root), kernels=KERNELS.values(),
                                          kv_layers=KV_LAYERS)


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
  """(eval root, [(question_id, image path, prompt)]) of the tiny non-square TextVQA."""
  root = tmp_path_factory.mktemp("eval_data")
  return root, user_folders.textvqa_folder(str(root))


@pytest.fixture(scope="module")
def reference(paper, benchmark):
  """{V: {question_id: (answer text, new token ids)}} of the paper's model in PyTorch; the
  tokenizer as the paper's code loads it, from the checkpoint folder."""
  answers = {}
  for budget, kernel in KERNELS.items():
    tokenizer = transformers.AutoTokenizer.from_pretrained(paper.checkpoints[kernel])
    model = user_folders.PaperReference(paper, kernel, tokenizer)
    answers[budget] = {qid: model.answer(Image.open(image), prompt, MAX_NEW_TOKENS)
                       for qid, image, prompt in benchmark[1]}
  return answers


@pytest.fixture(scope="module")
def converted(paper, tmp_path_factory):
  """{V: converted checkpoint folder}."""
  root = tmp_path_factory.mktemp("converted")
  out = {}
  for budget, kernel in KERNELS.items():
    out[budget] = str(root / f"quecc_v{budget}")
    assert user_folders.run_cli(["convert", paper.checkpoints[kernel], out[budget],
                                 "--vision-tower", paper.clip_path,
                                 "--kv-layers", ",".join(map(str, KV_LAYERS))]) == 0
  return out


@pytest.fixture(scope="module")
def evaluated(converted, benchmark, tmp_path_factory):
  """(status, results rows) of one `vlm-jax eval` of both checkpoints at their own budgets."""
  workdir = tmp_path_factory.mktemp("eval_run")
  status = user_folders.run_cli([
      "eval", "--config", f"{EVAL_CONFIG}:root={benchmark[0]},benchmarks=textvqa",
      "--checkpoints", ",".join(converted.values()), "--workdir", workdir])
  path = workdir / "results.json"
  return status, json.loads(path.read_text()) if path.exists() else []


def test_the_reference_depends_on_the_budget_and_stops(paper, reference):
  """The two checkpoints answer differently somewhere, and some answer ends early at a stop
  token: the comparison below would catch a wrong budget and a missed stop."""
  assert reference[4] != reference[1]
  stops = set(user_folders.stop_ids(paper.tokenizer))
  assert any(ids[-1] in stops and len(ids) < MAX_NEW_TOKENS
             for answers in reference.values() for _, ids in answers.values())


def test_the_reference_prompt_is_chatml_with_qwens_system_line(paper):
  reference = user_folders.PaperReference(paper, KERNELS[4], paper.tokenizer)
  before, after = reference.prompt_ids("What is it?")
  assert paper.tokenizer.decode(before) == (
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
  assert paper.tokenizer.decode(after) == "\nWhat is it?<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("budget", sorted(KERNELS))
def test_convert_keeps_budget_and_kv_layers(converted, budget):
  with open(os.path.join(converted[budget], "config.json")) as f:
    config = json.load(f)
  assert config["compressor"]["name"] == "quecc"
  assert config["compressor"]["budget"] == budget
  assert tuple(config["compressor"]["kv_layers"]) == KV_LAYERS


@pytest.mark.parametrize("budget", sorted(KERNELS))
def test_eval_answers_equal_the_paper_model(evaluated, converted, benchmark, reference, budget):
  status, rows = evaluated
  assert status == 0
  rows = [r for r in rows if r["checkpoint"] == converted[budget]]
  assert [(r["benchmark"], r["visual_tokens"]) for r in rows] == [("textvqa", budget)]
  assert rows[0]["n_scored"] == len(benchmark[1])
  answers = {a["question_id"]: a for a in user_folders.read_jsonl(rows[0]["answers_file"])}
  assert {qid: a["prompt"] for qid, a in answers.items()} == {
      qid: prompt for qid, _, prompt in benchmark[1]}
  assert {qid: a["text"] for qid, a in answers.items()} == {
      qid: text for qid, (text, _) in reference[budget].items()}
