"""score_vqa(variant="lmms_eval") against an independent model of lmms-eval's VQAv2 scorer.

The reference below is written from lmms-eval's source, not from vlm_jax:
  lmms_eval/tasks/vqav2/utils.py: vqav2_process_results
  lmms_eval/tasks/_task_utils/vqa_eval_metric.py: EvalAIAnswerProcessor
The prediction goes through the whole processor (`__call__`: word_tokenize,
newline/tab -> space + strip, process_punctuation, process_digit_article). Each
human answer only gets newline/tab -> space + strip; then, if the answers are
not all equal, process_punctuation and process_digit_article are applied to
every answer and once more to the prediction. The accuracy is the mean over
the answers of min(1, matches among the other answers / 3).
"""
import random
import re

import pytest

from vlm_jax.evaluate import SCORERS

_MARKS = frozenset(';/[]"{}()=+\\_-><@`,?!')
_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
            "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = frozenset({"a", "an", "the"})
# Only the entries the generated words can form; a word the generator made that
# the full table maps would make the comparison fail, not pass silently.
_CONTRACTIONS = {"dont": "don't", "whats": "what's", "isnt": "isn't"}
# process_punctuation passes re.UNICODE (32) as re.sub's count.
_PERIOD_LIMIT = 32


def _ref_word_tokenize(text):
  return text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()


def _ref_whitespace(text):
  return text.replace("\n", " ").replace("\t", " ").strip()


def _ref_drop_periods(text):
  """Removes the first 32 periods whose next character is not a digit."""
  kept, removed = [], 0
  for i, char in enumerate(text):
    if char == "." and removed < _PERIOD_LIMIT and not text[i + 1:i + 2].isdecimal():
      removed += 1
    else:
      kept.append(char)
  return "".join(kept)


def _ref_punctuation(text):
  delete_all = re.search(r"\d,+\d", text) is not None
  out = text
  for mark in _MARKS:
    touches_space = f"{mark} " in text or f" {mark}" in text
    out = out.replace(mark, "" if delete_all or touches_space else " ")
  return _ref_drop_periods(out)


def _ref_digit_article(text):
  words = [_NUMBERS.get(word, word) for word in text.lower().split()]
  return " ".join(_CONTRACTIONS.get(word, word) for word in words if word not in _ARTICLES)


def _ref_vqav2_accuracy(prediction, answers):
  """What vqav2_process_results returns as exact_match for one question."""
  prediction = _ref_digit_article(_ref_punctuation(_ref_whitespace(_ref_word_tokenize(prediction))))
  answers = [_ref_whitespace(answer) for answer in answers]
  if len(set(answers)) > 1:
    answers = [_ref_digit_article(_ref_punctuation(answer)) for answer in answers]
    prediction = _ref_digit_article(_ref_punctuation(prediction))
  # lmms-eval leaves out one answer dict at a time; VQAv2's dicts differ by answer_id.
  per_left_out = [min(1, (answers[:i] + answers[i + 1:]).count(prediction) / 3)
                  for i in range(len(answers))]
  return sum(per_left_out) / len(per_left_out)


def _score(prediction, answers, variant="lmms_eval"):
  return SCORERS.get("vqa")({1: prediction}, {1: answers}, variant=variant)["accuracy"]


@pytest.mark.parametrize("prediction, answers, expected", [
    # Unanimous answers are only stripped, the prediction loses its article.
    ("the", ["the"] * 10, 0.0),
    # Disagreeing answers are normalized too: all ten become "".
    ("the", ["the"] * 9 + ["a"], 1.0),
    # Step 1 splits the prediction's possessive; answers keep theirs.
    ("dog's", ["dog's"] * 10, 0.0),
    ("dog's", ["dog's"] * 6 + ["dogs"] * 4, 0.0),
    ("dogs", ["dog's"] * 6 + ["dogs"] * 4, 1.0),
    # Capitals: unanimous answers are not lowercased, disagreeing ones are.
    ("red", ["Red"] * 10, 0.0),
    ("red", ["Red"] * 9 + ["red"], 1.0),
    ("Yes.", [" yes\n"] * 10, 1.0),
    # Number words.
    ("two", ["two"] * 10, 0.0),
    ("Two", ["two"] * 2 + ["2"] + ["3"] * 7, 0.9),
    ("1000", ["1,000"] * 10, 0.0),
    ("1,000", ["1,000"] * 5 + ["1000"] * 5, 1.0),
    # Punctuation.
    ("USA", ["U.S.A."] * 2 + ["usa"] + ["america"] * 7, 0.9),
    ("left-right", ["left right"] * 2 + ["left"] * 8, 0.6),
    ("dont", ["dont"] * 3 + ["don't"] * 7, 1.0),
    # Past 32 periods: one pass leaves 8, the second pass (answers disagree)
    # removes them; unanimous answers meet the once-processed prediction.
    ("x" + "." * 40, ["x"] * 4 + ["y"] * 6, 1.0),
    ("x" + "." * 40, ["x" + "." * 8] * 10, 1.0),
])
def test_hand_computed_scores(prediction, answers, expected):
  assert _score(prediction, answers) == pytest.approx(expected)
  assert _ref_vqav2_accuracy(prediction, answers) == pytest.approx(expected)


def test_llava_variant_normalizes_unanimous_answers():
  assert _score("the", ["the"] * 10, variant="llava") == 1.0
  assert _score("dog's", ["dog's"] * 10, variant="llava") == 1.0
  assert _score("red", ["Red"] * 10, variant="llava") == 1.0


_STEMS = ["dog", "dog's", "dogs", "the dog", "a cat", "an apple", "the", "a", "two", "2",
          "none", "0", "ten", "red", "yes", "no", "1,000", "1000", "3.5", "U.S.A.", "usa",
          "dont", "don't", "whats", "isnt", "it's", "left-right", "red/blue", "man's hat",
          "t-shirt", "black and white", "unanswerable"]


def _decorate(rng, text):
  """One random surface variant of an answer: case, article, punctuation, spacing."""
  kind = rng.randrange(9)
  if kind == 0:
    return text.capitalize()
  if kind == 1:
    return text.upper()
  if kind == 2:
    return rng.choice(["the ", "a ", "An "]) + text
  if kind == 3:
    return text + rng.choice(["!", ".", "?", " .", ","])
  if kind == 4:
    return rng.choice([" ", "\t", "\n"]) + text + rng.choice(["", " ", "\n"])
  if kind == 5:
    return f'"{text}"'
  if kind == 6 and rng.random() < 0.2:
    return text + "." * rng.randrange(30, 41)
  return text


def _hard_case(rng):
  """(prediction, ten answers): unanimous, unanimous up to spacing, or a mix."""
  stems = rng.sample(_STEMS, rng.randrange(1, 4))
  shape = rng.randrange(3)
  if shape == 0:
    answers = [_decorate(rng, stems[0])] * 10
  elif shape == 1:
    answers = [rng.choice(["", " ", "\t"]) + stems[0] + rng.choice(["", " ", "\n"])
               for _ in range(10)]
  else:
    answers = [_decorate(rng, rng.choice(stems)) for _ in range(10)]
  prediction = _decorate(rng, rng.choice(stems + [rng.choice(_STEMS)]))
  return prediction, answers


def test_generated_hard_cases_match_reference():
  rng = random.Random(20240607)
  cases = [_hard_case(rng) for _ in range(600)]
  mismatches = [(p, a) for p, a in cases
                if _score(p, a) != pytest.approx(_ref_vqav2_accuracy(p, a))]
  assert not mismatches, mismatches[:5]
  # The cases are hard: the variants disagree on many, and both extremes occur.
  n_variants_differ = sum(_score(p, a) != pytest.approx(_score(p, a, "llava")) for p, a in cases)
  assert n_variants_differ >= 60
  scores = [_score(p, a) for p, a in cases]
  assert scores.count(0.0) >= 100 and scores.count(1.0) >= 50


def test_scores_average_over_questions():
  cases = [_hard_case(random.Random(seed)) for seed in range(50)]
  predictions = {i: p for i, (p, _) in enumerate(cases)}
  annotations = {i: a for i, (_, a) in enumerate(cases)}
  expected = sum(_ref_vqav2_accuracy(p, a) for p, a in cases) / len(cases)
  result = SCORERS.get("vqa")(predictions, annotations, variant="lmms_eval")
  assert result["accuracy"] == pytest.approx(expected)
