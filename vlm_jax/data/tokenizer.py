"""Local Hugging Face tokenizers: a folder, a tokenizer.json, or "builtin"."""
import os

BUILTIN_TOKENIZER_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "tokenizer")


class TextTokenizer:
  """Encodes text (by default without special tokens), safe across threads.

  Encoding goes straight to the Rust `tokenizers.Tokenizer` (the transformers
  wrapper mutates padding state per call, which races under grain's threads).
  """

  def __init__(self, hf_tokenizer):
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
      raise ValueError(f"{type(hf_tokenizer).__name__} is not a fast (tokenizers-backed) tokenizer")
    self.hf_tokenizer = hf_tokenizer
    self._backend = backend
    with_special = backend.encode("a", add_special_tokens=True).ids
    plain = backend.encode("a", add_special_tokens=False).ids
    # What the tokenizer puts in front of a sequence on its own (e.g. Llama's <s>).
    self.prefix_ids = with_special[:with_special.index(plain[0])] if plain[0] in with_special else []
    self.eos_id = hf_tokenizer.eos_token_id
    self.pad_id = next((i for i in (hf_tokenizer.pad_token_id, hf_tokenizer.unk_token_id, self.eos_id)
                        if i is not None), None)
    if self.pad_id is None:
      raise ValueError("the tokenizer has no pad, unk or eos token to pad with")

  def encode(self, text):
    return self._backend.encode(text, add_special_tokens=False).ids

  def encode_with_special_tokens(self, text):
    """As `hf_tokenizer(text)["input_ids"]`: with what the tokenizer adds (Llama's <s>)."""
    return self._backend.encode(text, add_special_tokens=True).ids

  def decode(self, ids, skip_special_tokens=False):
    return self.hf_tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

  def __len__(self):
    return len(self.hf_tokenizer)


def load_tokenizer(path="builtin"):
  """A TextTokenizer from "builtin", a local tokenizer folder or a tokenizer.json."""
  import transformers  # pylint: disable=import-outside-toplevel

  if path == "builtin":
    path = BUILTIN_TOKENIZER_DIR
  if os.path.isdir(path):
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
  elif os.path.isfile(path) and path.endswith(".json"):
    hf_tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=path)
    _name_special_tokens(hf_tokenizer)
  else:
    raise FileNotFoundError(f"no tokenizer folder or tokenizer .json file at {path!r}")
  return TextTokenizer(hf_tokenizer)


# A bare tokenizer.json names no special tokens: take the conventional ones it has.
_CONVENTIONAL_SPECIAL_TOKENS = {
    "eos_token": ("<|endoftext|>", "</s>"),
    "pad_token": ("<pad>", "<|endoftext|>", "<unk>", "</s>"),
}


def _name_special_tokens(hf_tokenizer):
  vocab = hf_tokenizer.get_vocab()
  for attribute, candidates in _CONVENTIONAL_SPECIAL_TOKENS.items():
    present = [token for token in candidates if token in vocab]
    if getattr(hf_tokenizer, attribute) is None and present:
      setattr(hf_tokenizer, attribute, present[0])
