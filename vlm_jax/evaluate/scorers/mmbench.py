"""MMBench: option parsing and circular evaluation.

A row with index >= 1,000,000 is a copy of base row index mod 10^6 with the
options rotated; a question (group) scores 1 only if every answered rotation
is right. Parsing, first rule that gives one letter among the row's options:
exactly one bare option letter among the whitespace-split words; exactly one
of `A.` `A,` `A:` `A)` `(A)` `:A` (tried in that order); exactly one option's
text inside the answer (case-insensitive). Otherwise the answer is unparsed
and wrong (the official tool would ask a judge model).
"""
import collections

from vlm_jax.evaluate.registry import SCORERS
from vlm_jax.evaluate.scorers import common

CIRCULAR_OFFSET = 1_000_000
# (prefix, suffix) around a letter; the first is the bare letter.
_LETTER_FORMS = (("", ""), ("", "."), ("", ","), ("", ":"), ("", ")"), ("(", ")"), (":", ""))


def _single(candidates):
  return candidates[0] if len(candidates) == 1 else None


def parse_option(text, options):
  """The chosen letter, or None. options: {letter: option text} of the row."""
  words = text.split()
  for prefix, suffix in _LETTER_FORMS:
    letter = _single([c for c in options if prefix + c + suffix in words])
    if letter is not None:
      return letter
  lowered = text.lower()
  return _single([c for c, option in options.items() if str(option).lower() in lowered])


def _question_of(index, circular):
  return int(index) % CIRCULAR_OFFSET if circular else index


def _accuracy_by(groups, key):
  totals = collections.defaultdict(lambda: [0, 0])
  for rows in groups.values():
    name = rows[0][1].get(key)
    totals[name][0] += all(right for right, _ in rows)
    totals[name][1] += 1
  return {name: right / count for name, (right, count) in totals.items()}


@SCORERS.register("mmbench")
def score_mmbench(predictions, annotations, circular=True):
  """annotations: {row index: {"answer": letter, "options": {letter: text},
  "category": str, "l2_category": str}}.

  With circular=False every row is its own question. Returns the common fields
  (accuracy over questions with at least one answered row; accuracy_all over
  every question, one with an unanswered row being wrong; n_scored and
  n_unanswered count rows), `n_questions`, `n_incomplete_questions` (scored
  on fewer rows than they have), and accuracy per `categories` /
  `l2_categories`.
  """
  answered, n_unanswered, unknown_ids = common.split_predictions(predictions, annotations)
  rows_per_group = collections.Counter(_question_of(index, circular) for index in annotations)
  groups = collections.defaultdict(list)
  n_unparsed = 0
  for index, text, row in answered:
    letter = parse_option(text, row["options"])
    n_unparsed += letter is None
    groups[_question_of(index, circular)].append((letter == row["answer"], row))
  correct = sum(all(right for right, _ in rows) for rows in groups.values())
  correct_and_complete = sum(all(right for right, _ in rows) and len(rows) == rows_per_group[g]
                             for g, rows in groups.items())
  return common.make_result(
      common.ratio(correct, len(groups)), len(answered), n_unanswered, unknown_ids,
      n_unparsed, accuracy_all=common.ratio(correct_and_complete, len(rows_per_group)),
      n_questions=len(groups),
      n_incomplete_questions=sum(len(rows) < rows_per_group[g] for g, rows in groups.items()),
      categories=_accuracy_by(groups, "category"),
      l2_categories=_accuracy_by(groups, "l2_category"))
