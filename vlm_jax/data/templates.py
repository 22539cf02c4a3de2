"""Chat templates (LLaVA's conversation styles), found by name in TEMPLATES.

A template turns conversation rounds [(user, assistant)] into segments
[(text, is_answer)]: the answer segments (each answer with its end-of-turn
marker) are the only ones trained on. Joined, the segments' texts are the
exact prompt string; `<image>` stays in the text and becomes the placeholder
id at tokenization. `get_template("hf", tokenizer)` renders a checkpoint's own
Jinja chat template instead.
"""
from vlm_jax.data.records import IMAGE_TOKEN
from vlm_jax.registry import Registry

TEMPLATES = Registry("chat template")


class ChatML:
  """Qwen's chatml: <|im_start|>role\\ntext<|im_end|>\\n per turn."""

  system = "You are a helpful assistant."
  end_of_turn = "<|im_end|>"

  def _header(self):
    return f"<|im_start|>system\n{self.system}<|im_end|>\n"

  def conversation(self, rounds):
    segments = [(self._header(), False)]
    for user, answer in rounds:
      segments.append((f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n", False))
      if answer is not None:
        segments += [(answer + self.end_of_turn, True), ("\n", False)]
    return segments

  def generation_prompt(self, user):
    return [(self._header() + f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n", False)]


class VicunaV1:
  """LLaVA's conv_vicuna_v1 (SeparatorStyle.TWO, sep " ", sep2 "</s>").

  Prompt: `{system} USER: {q} ASSISTANT: {a}</s>USER: ...`; the space after
  "ASSISTANT:" belongs to the answer, since generation starts right after the
  colon.
  """

  system = ("A chat between a curious user and an artificial intelligence assistant. "
            "The assistant gives helpful, detailed, and polite answers to the user's questions.")
  end_of_turn = "</s>"

  def conversation(self, rounds):
    segments = [(self.system + " ", False)]
    for user, answer in rounds:
      segments.append((f"USER: {user} ASSISTANT:", False))
      if answer is not None:
        segments.append((" " + answer + self.end_of_turn, True))
    return segments

  def generation_prompt(self, user):
    return [(f"{self.system} USER: {user} ASSISTANT:", False)]


class Plain:
  """LLaVA's conv_llava_plain for stage-1 captions: the image, then the caption.

  As LLaVA's `preprocess_plain`, the user's text is dropped: the prompt is
  `<image>` alone and the target is the caption plus "\\n".
  """

  end_of_turn = "\n"

  def conversation(self, rounds):
    if len(rounds) != 1 or rounds[0][1] is None:
      raise ValueError(f"the plain template takes one question and one caption, got {len(rounds)} rounds")
    return [(IMAGE_TOKEN, False), (rounds[0][1] + self.end_of_turn, True)]

  def generation_prompt(self, user):
    del user
    return [(IMAGE_TOKEN, False)]


class HFChatTemplate:
  """A Hugging Face tokenizer's Jinja chat template, rendered by `apply_chat_template`.

  The prompt is byte-identical to what the `transformers` pipeline builds. Where the
  template takes a processor's structured content ([{"type": "image"}, {"type": "text"}],
  as LLaVA processors' templates do) the image is an image item and the template places
  it; otherwise the user text keeps its `<image>\n` prefix. Answer segments are found by
  rendering each conversation prefix: what the assistant's turn adds after the generation
  prompt is its answer and end-of-turn marker, less trailing whitespace.
  """

  def __init__(self, hf_tokenizer, image_token=IMAGE_TOKEN):
    if not hf_tokenizer.chat_template:
      raise ValueError("data.template='hf' but the tokenizer has no chat template")
    self._tokenizer = hf_tokenizer
    self._image_token = image_token
    self._structured = self._takes_structured_content()
    self.end_of_turn = self._end_of_turn()

  def _render(self, messages, add_generation_prompt):
    text = self._tokenizer.apply_chat_template(messages, tokenize=False,
                                               add_generation_prompt=add_generation_prompt)
    return text.replace(self._image_token, IMAGE_TOKEN) if self._image_token != IMAGE_TOKEN \
        else text

  def _takes_structured_content(self):
    probe = "vlm-jax-probe"
    try:
      text = self._tokenizer.apply_chat_template(
          [{"role": "user", "content": [{"type": "text", "text": probe}]}], tokenize=False)
    except Exception:  # pylint: disable=broad-except  # a template for string content only
      return False
    return probe in text and "'type'" not in text

  def _end_of_turn(self):
    answer = "vlm-jax-probe"
    messages = self._messages([("question", answer)])
    prompt = self._render(messages[:1], True)
    full = self._render(messages, False)
    return full[len(prompt) + len(answer):].rstrip() if full.startswith(prompt + answer) else ""

  def _user_content(self, text):
    if not self._structured:
      return text
    if text.startswith(IMAGE_TOKEN):
      return [{"type": "image"}, {"type": "text", "text": text[len(IMAGE_TOKEN):].lstrip("\n")}]
    return [{"type": "text", "text": text}]

  def _messages(self, rounds):
    messages = []
    for user, answer in rounds:
      messages.append({"role": "user", "content": self._user_content(user)})
      if answer is not None:
        content = [{"type": "text", "text": answer}] if self._structured else answer
        messages.append({"role": "assistant", "content": content})
    return messages

  def conversation(self, rounds):
    messages = self._messages(rounds)
    segments, done = [], ""
    for end in range(1, len(messages) + 1):
      if messages[end - 1]["role"] == "user":
        continue
      prompt = self._render(messages[:end - 1], True)
      full = self._render(messages[:end], False)
      if not (prompt.startswith(done) and full.startswith(prompt)):
        raise ValueError("the chat template does not render a conversation as a prefix of "
                         "its continuation; answers cannot be located for training")
      answer = full[len(prompt):].rstrip()
      segments += [(prompt[len(done):], False), (answer, True)]
      done = prompt + answer
    final = self._render(messages, False)
    if len(final) > len(done):
      segments.append((final[len(done):], False))
    return segments

  def generation_prompt(self, user):
    return [(self._render(self._messages([(user, None)]), True), False)]


def get_template(name, tokenizer=None, image_token=IMAGE_TOKEN):
  """The template `name`; "hf": the chat template of `tokenizer` (a TextTokenizer)."""
  if name == "hf":
    if tokenizer is None:
      raise ValueError("data.template='hf' needs the tokenizer")
    return HFChatTemplate(tokenizer.hf_tokenizer, image_token)
  return TEMPLATES.get(name)


TEMPLATES.register("chatml")(ChatML())
TEMPLATES.register("vicuna_v1")(VicunaV1())
TEMPLATES.register("plain")(Plain())
