"""Chat templates (LLaVA's conversation styles), found by name in TEMPLATES.

A template turns conversation rounds [(user, assistant)] into segments
[(text, is_answer)]: the answer segments (each answer with its end-of-turn
marker) are the only ones trained on. Joined, the segments' texts are the
exact prompt string; `<image>` stays in the text and becomes the placeholder
id at tokenization.
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


TEMPLATES.register("chatml")(ChatML())
TEMPLATES.register("vicuna_v1")(VicunaV1())
TEMPLATES.register("plain")(Plain())
