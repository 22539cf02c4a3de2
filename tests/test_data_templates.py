"""Chat templates: exact prompt strings, label masks, the shipped tokenizer."""
import numpy as np
import pytest
import tokenizers
import transformers

from vlm_jax.data import records, templates, tokenizer as tokenizer_lib
from vlm_jax.data.examples import IGNORE_INDEX, ExampleBuilder

PLACEHOLDER = -200
ROUNDS_JSON = [
    {"from": "human", "value": "What is in the image?\n<image>"},
    {"from": "gpt", "value": "A red circle."},
    {"from": "human", "value": "How many?"},
    {"from": "gpt", "value": "One"},
]
VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the user's questions.")
# Written out by hand from Qwen's chatml and LLaVA's conv_vicuna_v1 / conv_llava_plain.
EXPECTED = {
    "chatml": ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
               "<|im_start|>user\n<image>\nWhat is in the image?<|im_end|>\n"
               "<|im_start|>assistant\nA red circle.<|im_end|>\n"
               "<|im_start|>user\nHow many?<|im_end|>\n"
               "<|im_start|>assistant\nOne<|im_end|>\n"),
    "vicuna_v1": (VICUNA_SYSTEM + " USER: <image>\nWhat is in the image? ASSISTANT: A red circle.</s>"
                  "USER: How many? ASSISTANT: One</s>"),
}
EXPECTED_ANSWER_SPANS = {
    "chatml": ["A red circle.<|im_end|>", "One<|im_end|>"],
    "vicuna_v1": [" A red circle.</s>", " One</s>"],
}
EXPECTED_GENERATION_PROMPT = {
    "chatml": ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
               "<|im_start|>user\n<image>\nWhat is in the image?<|im_end|>\n<|im_start|>assistant\n"),
    "vicuna_v1": VICUNA_SYSTEM + " USER: <image>\nWhat is in the image? ASSISTANT:",
    "plain": "<image>",
}


@pytest.fixture(scope="module")
def tokenizer():
  return tokenizer_lib.load_tokenizer("builtin")


def builder(tokenizer, template, for_generation=False, max_length=512):
  return ExampleBuilder(tokenizer=tokenizer, template=templates.TEMPLATES.get(template),
                        image_kind="siglip", image_size=8, aspect="square",
                        max_length=max_length, image_token_id=PLACEHOLDER,
                        for_generation=for_generation)


def decode_with_placeholder(tokenizer, ids):
  """Decodes ids, writing the placeholder back as <image>."""
  pieces = np.split(np.asarray(ids), np.flatnonzero(np.asarray(ids) == PLACEHOLDER))
  text = tokenizer.decode(pieces[0])
  for piece in pieces[1:]:
    text += records.IMAGE_TOKEN + tokenizer.decode(piece[1:])
  return text


def answer_spans(labels):
  """Contiguous runs of unmasked labels."""
  spans, current = [], []
  for label in list(labels) + [IGNORE_INDEX]:
    if label != IGNORE_INDEX:
      current.append(label)
    elif current:
      spans.append(current)
      current = []
  return spans


@pytest.mark.parametrize("name", ["chatml", "vicuna_v1"])
def test_template_string_and_label_mask(tokenizer, name):
  rounds = records.conversation_rounds(ROUNDS_JSON)
  segments = templates.TEMPLATES.get(name).conversation(rounds)
  assert "".join(text for text, _ in segments) == EXPECTED[name]

  ids, labels = builder(tokenizer, name).encode(segments)
  assert ids.count(PLACEHOLDER) == 1
  assert decode_with_placeholder(tokenizer, ids) == EXPECTED[name]
  assert [tokenizer.decode(span) for span in answer_spans(labels)] == EXPECTED_ANSWER_SPANS[name]
  unmasked = [i for i, label in enumerate(labels) if label != IGNORE_INDEX]
  assert [ids[i] for i in unmasked] == [labels[i] for i in unmasked]


def test_plain_template_is_image_then_caption(tokenizer):
  rounds = records.conversation_rounds([
      {"from": "human", "value": "Describe the photo briefly.\n<image>"},
      {"from": "gpt", "value": "a dog on grass"}])
  segments = templates.TEMPLATES.get("plain").conversation(rounds)
  assert "".join(text for text, _ in segments) == "<image>a dog on grass\n"
  ids, labels = builder(tokenizer, "plain").encode(segments)
  assert ids[0] == PLACEHOLDER and labels[0] == IGNORE_INDEX
  assert [tokenizer.decode(span) for span in answer_spans(labels)] == ["a dog on grass\n"]
  with pytest.raises(ValueError, match="one question and one caption"):
    templates.TEMPLATES.get("plain").conversation(records.conversation_rounds(ROUNDS_JSON))


@pytest.mark.parametrize("name", ["chatml", "vicuna_v1", "plain"])
def test_generation_prompt_is_the_training_prefix(tokenizer, name):
  rounds = records.conversation_rounds(ROUNDS_JSON)
  template = templates.TEMPLATES.get(name)
  prompt = "".join(text for text, _ in template.generation_prompt(rounds[0][0]))
  assert prompt == EXPECTED_GENERATION_PROMPT[name]
  first_round = template.conversation(rounds[:1])
  training_text = "".join(text for text, _ in first_round)
  first_answer = next(text for text, is_answer in first_round if is_answer)
  assert training_text.startswith(prompt + first_answer)
  assert first_answer.endswith(template.end_of_turn)


def test_image_moves_to_the_front_of_its_turn_as_llava_does():
  rounds = records.conversation_rounds([
      {"from": "human", "value": "Look: <image> what is it?"}, {"from": "gpt", "value": "a cat"}])
  assert rounds == [("<image>\nLook:  what is it?", "a cat")]
  assert records.first_question([{"from": "human", "value": "<image>\n Which colour?\n"}]) == "Which colour?"


def test_shipped_tokenizer_loads_with_auto_tokenizer():
  hf = transformers.AutoTokenizer.from_pretrained(tokenizer_lib.BUILTIN_TOKENIZER_DIR)
  assert isinstance(hf, transformers.PreTrainedTokenizerFast)
  assert 512 <= len(hf) <= 2048
  for special in ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "</s>", "<pad>"):
    assert len(hf(special, add_special_tokens=False).input_ids) == 1, special
  assert hf.pad_token == "<pad>" and hf.eos_token == "<|endoftext|>"
  text = "what colour is the cell in row 2, column 3? XK7Q é"
  assert hf.decode(hf(text).input_ids) == text  # byte-level: any text round-trips


def test_bare_tokenizer_json_and_a_bos_prefix(tmp_path):
  """A tokenizer that prepends <s> (Llama-style) puts it first, masked."""
  vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3, "USER:": 4, "ASSISTANT:": 5, "hi": 6, "yes": 7}
  raw = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
  raw.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
  raw.add_special_tokens(["<s>", "</s>", "<pad>"])
  raw.post_processor = tokenizers.processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
  path = str(tmp_path / "tokenizer.json")
  raw.save(path)
  tokenizer = tokenizer_lib.load_tokenizer(path)
  assert (tokenizer.prefix_ids, tokenizer.pad_id, tokenizer.eos_id) == ([1], 3, 2)
  ids, labels = builder(tokenizer, "vicuna_v1").encode([("USER: hi ASSISTANT:", False), (" yes</s>", True)])
  assert ids == [1, 4, 6, 5, 7, 2]
  assert labels == [IGNORE_INDEX] * 4 + [7, 2]


def tiny_bpe(add_bos):
  """A byte-level BPE trained on two questions: Llama-style (<s> first) or Qwen-style (nothing)."""
  raw = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="<unk>"))
  raw.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
  raw.decoder = tokenizers.decoders.ByteLevel()
  raw.train_from_iterator(
      ["What colour is the square?", "How many circles are there?"],
      tokenizers.trainers.BpeTrainer(
          vocab_size=300, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
          initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet()))
  if add_bos:
    raw.post_processor = tokenizers.processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", raw.token_to_id("<s>"))])
  else:
    raw.post_processor = tokenizers.processors.ByteLevel(trim_offsets=False)
  return transformers.PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>",
                                              eos_token="</s>", pad_token="<pad>", unk_token="<unk>")


@pytest.mark.parametrize("add_bos", [True, False])
@pytest.mark.parametrize("image", [np.zeros((4, 4, 3), np.uint8), None])
def test_question_ids_are_the_hf_tokenizer_called_with_defaults(add_bos, image):
  """As QueCC's code, `tokenizer(question)`: Llama's tokenizer adds <s>, Qwen's nothing."""
  hf = tiny_bpe(add_bos)
  tokenizer = tokenizer_lib.TextTokenizer(hf)
  question = "How many circles are there?"
  prefix = "<image>\n" if image is not None else ""
  record = {"id": "q", "source": "test", "image": image,
            "conversations": [{"from": "human", "value": prefix + question},
                              {"from": "gpt", "value": "two"}]}
  example = builder(tokenizer, "vicuna_v1")(record)
  expected = hf(question)["input_ids"]
  assert example["question_ids"].tolist() == expected
  assert (expected[0] == hf.bos_token_id) == add_bos
  assert expected[add_bos:] == tokenizer.encode(question)
