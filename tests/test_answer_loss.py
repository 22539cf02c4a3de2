"""The harness's controls: answer-token cross-entropy (`answer_loss`) equals the model's own
log-probabilities of the reference answers after the generation prompt, at every budget of
a multi-budget checkpoint, and is added to rows written without it; shuffled images
(`shuffle_images`) are a derangement that keeps each question's answers."""
import os

import flax.linen as nn
import jax
import numpy as np
import pytest

from vlm_jax import checkpoints, configs, errors, models
from vlm_jax.data import config as data_config_lib
from vlm_jax.data import images, load_tokenizer, processor
from vlm_jax.evaluate import BENCHMARKS, answer_loss, harness
from vlm_jax.train import multi_budget

QUESTIONS = 5  # batches of 4: the second one filled up with copies of its one question
BUDGETS = (4, 16)
ONE_DEVICE = ["mesh.num_devices=1"]
# The built-in chatml template, written out by hand.
CHATML = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
          "<|im_start|>user\n<image>\n{question}<|im_end|>\n<|im_start|>assistant\n")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  """A random-init multi-budget QueCC VLM (tiny_llm xs, tiny tower) fed as built-in data is."""
  config = configs.preset(f"vlm:llm=tiny_llm:size=xs,compressor=quecc,budget={max(BUDGETS)}")
  config.compressor.budgets = BUDGETS
  config.processor = processor.from_data_config(
      data_config_lib.resolve(data_config_lib.default_config()))
  params = nn.unbox(models.init(config, jax.random.PRNGKey(0)))
  path = str(tmp_path_factory.mktemp("quecc") / "model")
  checkpoints.save(path, config, params)
  return path, config, params


def eval_config(answer_loss_on):
  return configs.load(os.path.join(
      configs.CONFIG_DIR, "eval", f"builtin.py:benchmarks=easy_vqa,num_examples={QUESTIONS},"
      f"batch_size=4,answer_loss={int(answer_loss_on)}"))


def log_softmax(logits):
  shifted = logits - logits.max(axis=-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def right_padded(rows):
  """(ids (B, L) zero-padded on the right, mask (B, L)): under causal attention the padding
  changes no earlier position's logits."""
  ids = np.zeros((len(rows), max(map(len, rows))), np.int32)
  for i, row in enumerate(rows):
    ids[i, :len(row)] = row
  return ids, (np.arange(ids.shape[1]) < np.array([len(r) for r in rows])[:, None]).astype(
      np.int32)


def expected_answer_ce(config, params, budget, data):
  """(nats per answer token, answer tokens): the plain forward of every question's prompt,
  written out here, and its answer + <|im_end|>; log-softmax in numpy."""
  tokenizer = load_tokenizer("builtin")
  prompts, answers, questions, pixels = [], [], [], []
  for example in data.examples:
    before, after = CHATML.format(question=example["prompt"]).split("<image>")
    prompts.append(tokenizer.encode(before) + [config.image_token_id] + tokenizer.encode(after))
    answers.append(tokenizer.encode(data.annotations[example["question_id"]] + "<|im_end|>"))
    questions.append(tokenizer.encode_with_special_tokens(example["prompt"]))
    pixels.append(images.preprocess_image(images.load_image(example["image"]), kind="siglip",
                                          image_size=config.vision.image_size))
  model = models.build(multi_budget.at_budget(config, budget))
  logits = jax.jit(model.apply)({"params": params}, *right_padded(
      [p + a for p, a in zip(prompts, answers)]), np.stack(pixels), *right_padded(questions))
  log_probs = log_softmax(np.asarray(logits, np.float64))
  total = 0.0
  for row, (prompt, answer) in enumerate(zip(prompts, answers)):
    first = len(prompt) - 1 + budget  # the first answer token, the image spliced in
    total -= log_probs[row, np.arange(first - 1, first - 1 + len(answer)), answer].sum()
  count = sum(map(len, answers))
  return total / count, count


def test_answer_ce_is_the_models_log_probability_of_the_answers_at_every_budget(
    checkpoint, tmp_path):
  path, config, params = checkpoint
  without = harness.run(eval_config(False), [path], str(tmp_path), budgets=BUDGETS,
                        overrides=ONE_DEVICE)
  assert not any("answer_ce" in row for row in without)
  rows = harness.run(eval_config(True), [path], str(tmp_path), budgets=BUDGETS,
                     overrides=ONE_DEVICE)
  # Added to the rows already written, which keep what generation measured.
  assert [r["visual_tokens"] for r in rows] == list(BUDGETS)
  for row, before in zip(rows, without):
    assert {k: v for k, v in row.items() if not k.startswith("answer_ce")} == before
  assert harness.run(eval_config(True), [path], str(tmp_path), budgets=BUDGETS,
                     overrides=ONE_DEVICE) == rows

  data = BENCHMARKS.get("easy_vqa").read(num_examples=QUESTIONS)
  for row in rows:
    ce, tokens = expected_answer_ce(config, params, row["visual_tokens"], data)
    assert row["answer_ce_tokens"] == tokens
    assert row["answer_ce"] == pytest.approx(ce, abs=1e-5)
  assert abs(rows[0]["answer_ce"] - rows[1]["answer_ce"]) > 1e-3  # the budgets differ


def test_reference_answer_is_the_most_common_first_on_ties():
  assert answer_loss.reference_answer("two", "easy_vqa") == "two"
  assert answer_loss.reference_answer(["b", "a", "a", "b", "c"], "vqav2") == "b"
  assert answer_loss.reference_answer(["a"] + ["b"] * 2, "vqav2") == "b"
  with pytest.raises(errors.BadValueError, match="pope's annotations are not answer texts"):
    answer_loss.reference_answer({"label": "yes", "split": "adversarial"}, "pope")
  assert answer_loss.reference_answers(None, "vqav2") is None


def test_answer_loss_and_shuffle_images_are_0_or_1():
  with pytest.raises(errors.UnknownNameError, match="unknown answer_loss 2; known: 0, 1"):
    configs.load(os.path.join(configs.CONFIG_DIR, "eval", "builtin.py:answer_loss=2"))
  config = configs.load(os.path.join(configs.CONFIG_DIR, "eval", "builtin.py:shuffle_images=1"))
  assert config.shuffle_images is True and config.answer_loss is False


@pytest.mark.parametrize("name", ["easy_vqa", "counting"])
def test_shuffled_images_are_a_derangement_with_each_questions_own_answers(name):
  data = BENCHMARKS.get(name).read(num_examples=60)
  own = harness._records(data, name)
  shuffled = harness._records(data, name, shuffle_images=True)
  assert [(r["id"], r["conversations"]) for r in shuffled] == [
      (r["id"], r["conversations"]) for r in own]
  assert all(s["image"] != o["image"] for s, o in zip(shuffled, own))
  # Each image's questions move together to one other image: a permutation of the images.
  pairs = {(o["image"], s["image"]) for s, o in zip(shuffled, own)}
  moved = dict(pairs)
  assert len(moved) == len(pairs) > 1 and sorted(moved.values()) == sorted(moved)
  assert harness._records(data, name, shuffle_images=True) == shuffled  # a fixed seed


def test_one_image_stays_and_text_only_questions_keep_none():
  examples = [{"question_id": i, "image": image, "prompt": "q"}
              for i, image in enumerate(["a.png", None, "a.png"])]
  assert [e["image"] for e in harness.shuffled_images(examples)] == ["a.png", None, "a.png"]
