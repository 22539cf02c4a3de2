"""ScienceQA: the option letter of a multiple-choice answer.

LLaVA parsing, first rule that applies: the text is a letter A-E; else its
first character when characters 1-2 are `. `; else the single match of
`The answer is ([A-Z]).`; else failed (wrong, counted as unparsed). Correct
when the letter's index equals the problem's answer index (a letter beyond the
problem's choices is wrong). IMG accuracy counts the questions with an image.
"""
import re

from vlm_jax.evaluate.registry import SCORERS
from vlm_jax.evaluate.scorers import common

OPTIONS = "ABCDE"
_THE_ANSWER_IS = re.compile(r"The answer is ([A-Z]).")


def parse_option_letter(text):
  """(letter or None, rule name): rule is letter | letter_dot | the_answer_is | failed."""
  if len(text) == 1 and text in OPTIONS:
    return text, "letter"
  if len(text) >= 3 and text[0] in OPTIONS and text[1:3] == ". ":
    return text[0], "letter_dot"
  matches = _THE_ANSWER_IS.findall(text)
  if len(matches) == 1:
    return matches[0], "the_answer_is"
  return None, "failed"


@SCORERS.register("scienceqa")
def score_scienceqa(predictions, annotations):
  """annotations: {question_id: {"choices": [...], "answer": index, "has_image": bool}}.

  Returns the common fields (accuracy over all answered questions), and
  `img_accuracy` / `n_img` over the answered questions that have an image,
  `accuracy_missing_as_wrong` (LLaVA's count: an unanswered question is
  wrong), and `rules` {rule name: how many answers it parsed}.
  """
  answered, n_unanswered, unknown_ids = common.split_predictions(predictions, annotations)
  rules = {"letter": 0, "letter_dot": 0, "the_answer_is": 0, "failed": 0}
  correct = img_correct = n_img = 0
  for _, text, problem in answered:
    letter, rule = parse_option_letter(text)
    rules[rule] += 1
    right = (letter is not None and letter in OPTIONS[:len(problem["choices"])]
             and OPTIONS.index(letter) == problem["answer"])
    correct += right
    if problem["has_image"]:
      n_img += 1
      img_correct += right
  return common.make_result(
      common.ratio(correct, len(answered)), len(answered), n_unanswered, unknown_ids,
      rules["failed"],
      img_accuracy=common.ratio(img_correct, n_img), n_img=n_img,
      accuracy_missing_as_wrong=common.ratio(correct, len(annotations)),
      rules=rules)
