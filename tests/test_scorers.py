"""Scorers against hand-computed values and the rules of EVAL_SCORING.md."""
import itertools
import math

import pytest

from vlm_jax.evaluate import SCORERS
from vlm_jax.evaluate import vqa_normalize
from vlm_jax.evaluate.scorers import mmbench, mme, pope, scienceqa, seed, vqa


# ---------------------------------------------------------------- VQA

@pytest.mark.parametrize("text, expected", [
    ("None", "0"),
    ("It's red!", "it 's red"),
    ("3.5", "3.5"),
    ("U.S.A.", "usa"),
    ("Two dogs", "2 dogs"),
    ("the cat", "cat"),
    ("An apple a day", "apple day"),
    ("dont", "don't"),
    ("whats up", "what's up"),
    ("Im", "im"),  # the table's capitalized keys never match lowercased text
    ("yes - no/maybe", "yes no maybe"),  # `-` touches a space: deleted; `/` does not: spaced
    ("x -y-z", "x yz"),  # decided per mark over the whole text, not per occurrence
    ("left-right", "left right"),
    ("red\tand\nblue", "red and blue"),
    ("How many?", "how many"),
    ("1,000", "1000"),
    ("ten o'clock", "10 o'clock"),
    ("TEN", "10"),
])
def test_normalize_answer(text, expected):
  assert vqa_normalize.normalize_answer(text) == expected


def test_digit_comma_digit_deletes_every_mark():
  # Step 1 already deletes commas, so the rule shows on step 3 alone (as in
  # lmms-eval's VQAv2 human answers, which skip step 1).
  assert vqa_normalize.normalize_punctuation("1,000-2") == "10002"
  assert vqa_normalize.normalize_punctuation("a,b-2") == "a b 2"


def test_at_most_32_periods_are_removed():
  assert vqa_normalize.normalize_punctuation("a" + "." * 40) == "a" + "." * 8


def _leave_one_out(prediction, humans):
  """The definition, written out: mean over the 10 subsets of 9 of min(1, matches/3)."""
  subsets = itertools.combinations(range(len(humans)), len(humans) - 1)
  scores = [min(1, sum(humans[i] == prediction for i in subset) / 3) for subset in subsets]
  return sum(scores) / len(scores)


@pytest.mark.parametrize("k, expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0),
                                         (7, 1.0)])
def test_soft_score_table(k, expected):
  # k=1: 9 subsets keep the match (1/3 each), 1 loses it -> 9/3/10 = 0.3;
  # k=3: 3 subsets keep 2 (2/3), 7 keep 3 (1) -> (2 + 7)/10 = 0.9.
  humans = ["cat"] * k + ["dog"] * (10 - k)
  assert vqa.soft_score("cat", humans) == pytest.approx(expected)
  assert _leave_one_out("cat", humans) == pytest.approx(expected)


def test_vqa_scorer_counts_unanswered_and_unknown():
  annotations = {
      1: ["2"] * 3 + ["3"] * 7,
      2: ["yes"] * 10,
      3: ["red"] * 10,
  }
  predictions = {1: "Two", 2: "Yes.", 99: "extra"}
  result = SCORERS.get("vqa")(predictions, annotations)
  assert result["accuracy"] == pytest.approx((0.9 + 1.0) / 2)
  assert result["n_scored"] == 2
  assert result["n_unanswered"] == 1
  assert result["n_unparsed"] == 0
  assert result["unknown_ids"] == [99] and result["n_unknown"] == 1


def test_vqa_lmms_eval_variant_does_not_split_possessives_of_unanimous_answers():
  annotations = {1: ["man's hat"] * 10}
  predictions = {1: "man's hat"}
  assert SCORERS.get("vqa")(predictions, annotations)["accuracy"] == 1.0
  assert SCORERS.get("vqa")(predictions, annotations, variant="lmms_eval")["accuracy"] == 0.0
  with pytest.raises(ValueError, match="variant"):
    SCORERS.get("vqa")(predictions, annotations, variant="other")


def test_prediction_must_be_text():
  with pytest.raises(TypeError, match="question 1"):
    SCORERS.get("vqa")({1: 3}, {1: ["3"] * 10})


def test_nothing_answered_gives_nan():
  result = SCORERS.get("vqa")({}, {1: ["3"] * 10})
  assert math.isnan(result["accuracy"]) and result["n_unanswered"] == 1


# ---------------------------------------------------------------- GQA, exact match

def test_gqa_variants():
  annotations = {"a": "yes", "b": "yes", "c": "left"}
  predictions = {"a": "Yes.", "b": "yes!", "c": " Left "}
  llava = SCORERS.get("gqa")(predictions, annotations)
  assert llava["accuracy"] == pytest.approx(1 / 3)  # only rstrip('.') + lower
  lmms = SCORERS.get("gqa")(predictions, annotations, variant="lmms_eval")
  assert lmms["accuracy"] == 1.0


def test_exact_match():
  annotations = {0: "circle", 1: "the circle", 2: ["blue", "dark blue"], 3: "red"}
  predictions = {0: " Circle. ", 1: "The   Circle", 2: "Dark Blue.", 3: "reddish"}
  result = SCORERS.get("exact_match")(predictions, annotations)
  assert result["accuracy"] == 0.75 and result["n_scored"] == 4


# ---------------------------------------------------------------- POPE

@pytest.mark.parametrize("text, expected", [
    ("Yes", "yes"), ("No", "no"), ("no", "no"),
    ("NO", "yes"),  # LLaVA only knows `No`, `no` and `not`
    ("There is not a dog.", "no"),
    ("Yes. No dog is missing.", "yes"),  # only the first sentence counts
    ("No, there is none", "no"),
    ("Yes, no doubt", "no"),
])
def test_pope_parse(text, expected):
  assert pope.parse_yes_no(text) == expected


def test_pope_metrics_on_a_known_confusion_matrix():
  # split "random": TP=3, FP=1, TN=2, FN=2.
  labels = ["yes"] * 3 + ["no"] + ["no"] * 2 + ["yes"] * 2
  answers = ["Yes"] * 3 + ["Yes"] + ["No"] * 2 + ["No"] * 2
  annotations = {i: {"label": y, "split": "random"} for i, y in enumerate(labels)}
  predictions = dict(enumerate(answers))
  # split "popular": one question, right.
  annotations[100] = {"label": "no", "split": "popular"}
  predictions[100] = "no"
  annotations[101] = {"label": "yes", "split": "popular"}  # unanswered
  result = SCORERS.get("pope")(predictions, annotations)
  random_split = result["splits"]["random"]
  assert (random_split["tp"], random_split["fp"], random_split["tn"], random_split["fn"]) == (
      3, 1, 2, 2)
  assert random_split["accuracy"] == pytest.approx(5 / 8)
  assert random_split["precision"] == pytest.approx(3 / 4)
  assert random_split["recall"] == pytest.approx(3 / 5)
  assert random_split["f1"] == pytest.approx(2 * 0.75 * 0.6 / (0.75 + 0.6))
  assert random_split["yes_ratio"] == pytest.approx(4 / 8)
  popular = result["splits"]["popular"]
  assert popular["accuracy"] == 1.0 and math.isnan(popular["precision"])
  assert math.isnan(popular["f1"])  # no positive at all
  assert result["accuracy"] == pytest.approx(6 / 9)
  assert result["n_unanswered"] == 1 and result["n_scored"] == 9


def test_pope_lmms_eval_exact_yes_no_and_ground_truth_yes_ratio():
  annotations = {0: {"label": "yes", "split": "r"}, 1: {"label": "yes", "split": "r"},
                 2: {"label": "no", "split": "r"}}
  predictions = {0: " YES ", 1: "Yes.", 2: "no"}
  result = SCORERS.get("pope")(predictions, annotations, variant="lmms_eval")
  assert result["n_unparsed"] == 1
  assert result["accuracy"] == pytest.approx(2 / 3)
  assert result["yes_ratio"] == pytest.approx(2 / 3)  # the labels' yes share
  assert result["recall"] == 1.0  # the unparsed answer is neither TP nor FN
  llava = SCORERS.get("pope")(predictions, annotations)
  assert llava["accuracy"] == 1.0 and llava["n_unparsed"] == 0


def test_pope_rejects_bad_labels():
  with pytest.raises(ValueError, match="maybe"):
    SCORERS.get("pope")({0: "yes"}, {0: {"label": "maybe", "split": "r"}})


# ---------------------------------------------------------------- ScienceQA

@pytest.mark.parametrize("text, letter, rule", [
    ("B", "B", "letter"),
    ("C. Because the magnet is larger.", "C", "letter_dot"),
    ("Looking at it, The answer is A. Done", "A", "the_answer_is"),
    ("The answer is A. No, The answer is B.", None, "failed"),  # two matches
    ("The answer is A", None, "failed"),  # the pattern needs one more character
    ("banana", None, "failed"),
    ("AB", None, "failed"),
    ("F", None, "failed"),
])
def test_scienceqa_parse(text, letter, rule):
  assert scienceqa.parse_option_letter(text) == (letter, rule)


def test_scienceqa_scores_by_answer_index_and_counts_img():
  choices3 = ["x", "y", "z"]
  annotations = {
      "1": {"choices": choices3, "answer": 1, "has_image": True},
      "2": {"choices": choices3, "answer": 2, "has_image": True},
      "3": {"choices": choices3, "answer": 0, "has_image": False},
      "4": {"choices": choices3, "answer": 0, "has_image": True},
      "5": {"choices": choices3, "answer": 0, "has_image": True},
      "6": {"choices": choices3, "answer": 0, "has_image": True},  # unanswered
  }
  predictions = {"1": "B", "2": "C. z", "3": "The answer is A.", "4": "D", "5": "no idea"}
  result = SCORERS.get("scienceqa")(predictions, annotations)
  assert result["accuracy"] == pytest.approx(3 / 5)
  assert result["img_accuracy"] == pytest.approx(2 / 4) and result["n_img"] == 4
  assert result["accuracy_missing_as_wrong"] == pytest.approx(3 / 6)
  assert result["n_unparsed"] == 1  # "D" is a letter beyond the choices: parsed, wrong
  assert result["rules"] == {"letter": 2, "letter_dot": 1, "the_answer_is": 1, "failed": 1}


# ---------------------------------------------------------------- MMBench

OPTIONS = {"A": "dog", "B": "cat", "C": "bird"}


@pytest.mark.parametrize("text, expected", [
    ("B", "B"), ("B.", "B"), ("(C)", "C"), ("Answer: B) cat", "B"), ("A, I think", "A"),
    ("The answer is :C", "C"),
    ("It is a cat", "B"),  # option text
    ("A cat", "A"),  # a bare `A` counts as a letter first
    ("dog or cat", None),  # two option texts: unparsed
    ("a horse", None),
    ("A or B", None),  # two bare letters are ambiguous
])
def test_mmbench_parse(text, expected):
  assert mmbench.parse_option(text, OPTIONS) == expected


def test_mmbench_circular_groups():
  def row(answer, options=OPTIONS, category="c1"):
    return {"answer": answer, "options": options, "category": category, "l2_category": "l2"}
  annotations = {
      # question 5: three rotations, one answered wrong -> 0
      5: row("A"), 1_000_005: row("C"), 2_000_005: row("B"),
      # question 7: two rotations, both right -> 1
      7: row("B", category="c2"), 1_000_007: row("A", category="c2"),
      # question 9: one rotation unanswered, the other right -> scored on what is answered
      9: row("C", category="c2"), 1_000_009: row("B", category="c2"),
  }
  predictions = {5: "A", 1_000_005: "C", 2_000_005: "A",
                 7: "B", 1_000_007: "A. dog",
                 9: "C"}
  result = SCORERS.get("mmbench")(predictions, annotations)
  assert result["n_questions"] == 3 and result["accuracy"] == pytest.approx(2 / 3)
  assert result["categories"] == {"c1": 0.0, "c2": 1.0}
  assert result["n_unanswered"] == 1 and result["n_incomplete_questions"] == 1
  flat = SCORERS.get("mmbench")(predictions, annotations, circular=False)
  assert flat["accuracy"] == pytest.approx(5 / 6)


def test_mmbench_unparsed_is_wrong_and_counted():
  annotations = {0: {"answer": "B", "options": OPTIONS, "category": "c", "l2_category": "l"}}
  result = SCORERS.get("mmbench")({0: "a dog and a cat"}, annotations)
  assert result["accuracy"] == 0.0 and result["n_unparsed"] == 1


# ---------------------------------------------------------------- MME

@pytest.mark.parametrize("text, expected", [
    ("Yes.", "yes"), ("no", "no"), ("y", "yes"), ("N", "no"), ("x", "other"),
    ("Yes, there is", "yes"), ("None of them", "no"), ("It is not", "other"),
])
def test_mme_parse(text, expected):
  assert mme.parse_yes_no(text) == expected


def test_mme_acc_and_acc_plus():
  def q(category, image, answer):
    return {"category": category, "image_id": image, "answer": answer}
  annotations = {
      "e/1#0": q("existence", "e/1", "Yes"), "e/1#1": q("existence", "e/1", "No"),
      "e/2#0": q("existence", "e/2", "Yes"), "e/2#1": q("existence", "e/2", "No"),
      "c/1#0": q("count", "c/1", "Yes"), "c/1#1": q("count", "c/1", "No"),
      "r/1#0": q("code_reasoning", "r/1", "Yes"), "r/1#1": q("code_reasoning", "r/1", "No"),
  }
  predictions = {
      "e/1#0": "Yes", "e/1#1": "Yes",  # one of two right: acc 50, acc+ 0 for this image
      "e/2#0": "yes", "e/2#1": "no",  # both right
      "c/1#0": "Yes", "c/1#1": "No",
      "r/1#0": "maybe", "r/1#1": "No",
  }
  result = SCORERS.get("mme")(predictions, annotations)
  existence = result["subtasks"]["existence"]
  assert existence["acc"] == pytest.approx(75.0) and existence["acc_plus"] == pytest.approx(50.0)
  assert existence["score"] == pytest.approx(125.0)
  assert result["subtasks"]["count"]["score"] == pytest.approx(200.0)
  assert result["perception_score"] == pytest.approx(325.0)
  assert result["cognition_score"] == pytest.approx(50.0)  # acc 50, acc+ 0
  assert result["n_unparsed"] == 1
  assert result["accuracy"] == pytest.approx(6 / 8)
  assert "posters" in result["missing_subtasks"] and "count" not in result["missing_subtasks"]


def test_mme_single_image_one_of_two_right():
  annotations = {"a#0": {"category": "color", "image_id": "a", "answer": "Yes"},
                 "a#1": {"category": "color", "image_id": "a", "answer": "No"}}
  result = SCORERS.get("mme")({"a#0": "Yes", "a#1": "Yes"}, annotations)
  assert result["subtasks"]["color"] == {"acc": 50.0, "acc_plus": 0.0, "score": 50.0}


def test_mme_unknown_subtask():
  with pytest.raises(ValueError, match="subtask"):
    SCORERS.get("mme")({"a": "yes"}, {"a": {"category": "bogus", "image_id": "a",
                                            "answer": "Yes"}})


# ---------------------------------------------------------------- SEED

def test_seed_per_type_and_data_type():
  def q(answer, data_type, question_type):
    return {"answer": answer, "data_type": data_type, "question_type": question_type}
  annotations = {
      "1": q("A", "image", "Scene Understanding"),
      "2": q("B", "image", "Scene Understanding"),
      "3": q("C", "image", "Instance Counting"),
      "4": q("D", "video", "Action Recognition"),
      "5": q("A", "video", "Action Recognition"),  # unanswered
  }
  predictions = {"1": "A", "2": "C", "3": "c. three", "4": "D"}
  result = SCORERS.get("seed")(predictions, annotations)
  assert result["question_types"] == {"Action Recognition": 1.0, "Instance Counting": 0.0,
                                      "Scene Understanding": 0.5}
  assert result["image_accuracy"] == pytest.approx(1 / 3)
  assert result["video_accuracy"] == 1.0
  assert result["accuracy"] == pytest.approx(2 / 4)
  assert result["accuracy_missing_as_wrong"] == pytest.approx(2 / 5)
  assert result["n_unparsed"] == 1
  lmms = SCORERS.get("seed")(predictions, annotations, variant="lmms_eval")
  assert lmms["question_types"]["Instance Counting"] == 1.0 and lmms["n_unparsed"] == 0


def test_seed_parse_letter():
  assert seed.parse_letter("B") == "B"
  assert seed.parse_letter("B.") is None
  assert seed.parse_letter(" b) two", "lmms_eval") == "B"


def test_every_scorer_reports_the_common_fields():
  assert SCORERS.names() == ["exact_match", "gqa", "mmbench", "mme", "pope", "scienceqa",
                             "seed", "vqa"]
  for name in SCORERS.names():
    result = SCORERS.get(name)({}, {})
    assert {"accuracy", "n_scored", "n_unanswered", "n_unparsed", "unknown_ids"} <= set(result)
