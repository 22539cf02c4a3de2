"""LLaVA-1.5 evaluation prompts.

A prompt here is the user text only: the model code puts `<image>\\n` before it
and wraps it in the chat template. Each prompt style ends the text with fixed
instruction lines; LLaVA's question files often carry them already, and they
are never repeated.
"""
IMAGE_TOKEN = "<image>"
SHORT_ANSWER = "Answer the question using a single word or phrase."
UNANSWERABLE = "When the provided information is insufficient, respond with 'Unanswerable'."
OPTION_LETTER = "Answer with the option's letter from the given choices directly."

# prompt style -> the instruction lines that end the prompt.
STYLES = {
    "short_answer": (SHORT_ANSWER,),  # VQAv2, GQA, POPE, MME, TextVQA
    "short_answer_unanswerable": (UNANSWERABLE, SHORT_ANSWER),  # VizWiz
    "multiple_choice": (OPTION_LETTER,),  # ScienceQA, MMBench, SEED-Bench
}
_INSTRUCTIONS = frozenset(line for lines in STYLES.values() for line in lines)


def strip_instructions(text):
  """text without `<image>` and without the instruction lines that end it."""
  if IMAGE_TOKEN in text:
    text = text.replace(IMAGE_TOKEN, "").strip()
  lines = text.split("\n")
  while lines and lines[-1].strip() in _INSTRUCTIONS:
    lines.pop()
  return "\n".join(lines)


def build_prompt(style, text):
  """The prompt of one question: `strip_instructions(text)`, then the style's lines."""
  if style not in STYLES:
    raise ValueError(f"unknown prompt style {style!r}; known: {', '.join(STYLES)}")
  return "\n".join([strip_instructions(text), *STYLES[style]])


def multiple_choice_text(question, options, hint=None):
  """`[hint\\n]question\\nA. first\\nB. second...` (before the instruction line)."""
  lines = [hint] if hint else []
  lines.append(question)
  lines += [f"{chr(ord('A') + i)}. {option}" for i, option in enumerate(options)]
  return "\n".join(lines)
