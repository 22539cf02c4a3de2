"""Answer normalization of VQA evaluation (the EvalAI answer processor).

Applied to a model's answer and to each human answer before VQA soft accuracy
(VQAv2, VizWiz, TextVQA), and to the answers of the VQAv2 / VizWiz submission
files; lmms-eval's VQAv2 applies only some steps to the human answers (see
scorers/vqa.py). Four steps, each its own function:

  1. `split_possessives`: lowercase, delete `,` and `?`, `'s` -> ` 's`, strip.
  2. `normalize_whitespace`: newlines and tabs become spaces, strip.
  3. `normalize_punctuation`: drop or space out punctuation marks, drop periods
     that are not decimal points.
  4. `normalize_words`: number words to digits, drop articles, restore
     contractions, single spaces.

Examples: "None" -> "0", "It's red!" -> "it 's red", "U.S.A." -> "usa".
"""
import re

NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
ARTICLES = frozenset({"a", "an", "the"})
# `'` and `:` are deliberately absent: they survive normalization.
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_",
               "-", ">", "<", "@", "`", ",", "?", "!")
_DIGIT_COMMA_DIGIT = re.compile(r"(?<=\d),+(?=\d)")
_PERIOD_NOT_DECIMAL = re.compile(r"\.(?!\d)")
# The official processor passes re.UNICODE (== 32) in the `count` slot of
# Pattern.sub, so it removes at most 32 periods; kept for identical scores.
_MAX_PERIODS_REMOVED = 32

# Apostrophe-less spellings -> the contraction. Matching happens after
# lowercasing, so the keys with capitals (from the official table) never match,
# and keys containing `'s` never match because step 1 splits `'s` off.
CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've",
    "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've",
    "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've",
    "I'dve": "I'd've", "Im": "I'm", "Ive": "I've", "isnt": "isn't",
    "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
    "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock",
    "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've",
    "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've",
    # Reversed in the official table; kept so scores match it.
    "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've",
    "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've",
    "somethingll": "something'll", "thats": "that's", "thered": "there'd",
    "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd",
    "theyd've": "they'd've", "they'dve": "they'd've", "theyll": "they'll",
    "theyre": "they're", "theyve": "they've", "twas": "'twas",
    "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
    "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've",
    "whens": "when's", "whered": "where'd", "wheres": "where's",
    "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's",
    "whove": "who've", "whyll": "why'll", "whyre": "why're", "whys": "why's",
    "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've",
    "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've",
    "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}


def split_possessives(text):
  """Step 1: lowercase, delete `,` and `?`, `'s` -> ` 's`, strip."""
  text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's")
  return text.strip()


def normalize_whitespace(text):
  """Step 2: newlines and tabs become spaces; strip."""
  return text.replace("\n", " ").replace("\t", " ").strip()


def normalize_punctuation(text):
  """Step 3: punctuation marks and periods.

  The choice is made per mark over the whole text: a mark that appears next to
  a space anywhere (or any mark, when the text has digit,comma,digit) is
  deleted everywhere, otherwise every occurrence becomes a space. Then periods
  not followed by a digit are removed ("3.5" keeps its point).
  """
  has_digit_comma_digit = _DIGIT_COMMA_DIGIT.search(text) is not None
  out = text
  for mark in PUNCTUATION:
    next_to_space = (mark + " " in text) or (" " + mark in text)
    out = out.replace(mark, "" if next_to_space or has_digit_comma_digit else " ")
  return _PERIOD_NOT_DECIMAL.sub("", out, count=_MAX_PERIODS_REMOVED)


def normalize_words(text):
  """Step 4: number words -> digits, drop articles, contractions, single spaces."""
  words = []
  for word in text.lower().split():
    word = NUMBER_WORDS.get(word, word)
    if word not in ARTICLES:
      words.append(CONTRACTIONS.get(word, word))
  return " ".join(words)


def normalize_answer(text):
  """All four steps: the processor's treatment of a model's answer."""
  return normalize_words(normalize_punctuation(normalize_whitespace(split_possessives(text))))
