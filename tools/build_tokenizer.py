"""Builds the small byte-level BPE tokenizer shipped for the tiny models.

Trained on the built-in tasks' text (easy-vqa and the procedural tasks'
questions and answers) laid out by every chat template, with the templates'
special tokens. Writes a folder loadable with
`transformers.AutoTokenizer.from_pretrained`:

  python tools/build_tokenizer.py --out vlm_jax/assets/tokenizer
"""
import argparse
import json
import os

import easy_vqa
import tokenizers
import transformers
from tokenizers import decoders, models, pre_tokenizers, trainers

from vlm_jax.data import procedural
from vlm_jax.data.templates import TEMPLATES

PAD, EOS = "<pad>", "<|endoftext|>"
SPECIAL_TOKENS = [PAD, EOS, "<|im_start|>", "<|im_end|>", "</s>"]


def corpus(samples_per_task):
  """Lines of training text: each question/answer pair laid out by each template."""
  pairs = []
  for read in (easy_vqa.get_train_questions, easy_vqa.get_test_questions):
    questions, answers, _ = read()
    pairs += list(zip(questions, answers))
  for task in procedural.TASKS.names():
    for split in procedural.SPLITS:
      samples = procedural.sample_questions(task, split, seed=0, num_examples=samples_per_task)
      pairs += [(question, answer) for _, question, answer in samples]
  for question, answer in pairs:
    for name in TEMPLATES.names():
      text = "".join(t for t, _ in TEMPLATES.get(name).conversation([(question, answer)]))
      for special in SPECIAL_TOKENS:
        text = text.replace(special, "\n")  # special tokens are added whole, not learned
      yield text


def build(vocab_size, samples_per_task):
  tokenizer = tokenizers.Tokenizer(models.BPE())
  tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tokenizer.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                show_progress=False)
  tokenizer.train_from_iterator(corpus(samples_per_task), trainer=trainer)
  return transformers.PreTrainedTokenizerFast(
      tokenizer_object=tokenizer, eos_token=EOS, pad_token=PAD, model_max_length=2048,
      additional_special_tokens=SPECIAL_TOKENS[2:])


def _write_json(path, value):
  with open(path, "w", encoding="utf-8") as f:
    json.dump(value, f, indent=2)
    f.write("\n")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join("vlm_jax", "assets", "tokenizer"))
  parser.add_argument("--vocab_size", type=int, default=1024)
  parser.add_argument("--samples_per_task", type=int, default=3000)
  args = parser.parse_args(argv)
  tokenizer = build(args.vocab_size, args.samples_per_task)
  tokenizer.save_pretrained(args.out)
  # Name the class every transformers version knows (5.x writes its own
  # "TokenizersBackend"), and keep the special-token map 4.x reads.
  config_path = os.path.join(args.out, "tokenizer_config.json")
  with open(config_path, encoding="utf-8") as f:
    tokenizer_config = json.load(f)
  tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"
  _write_json(config_path, tokenizer_config)
  _write_json(os.path.join(args.out, "special_tokens_map.json"),
              {"eos_token": EOS, "pad_token": PAD, "additional_special_tokens": SPECIAL_TOKENS[2:]})
  print(f"wrote a {len(tokenizer)}-token tokenizer to {args.out}")


if __name__ == "__main__":
  main()
