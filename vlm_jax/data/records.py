"""LLaVA-format records: reading, validation and conversation rounds.

A record is a dict `{id, image, conversations, source}` plus an optional
`answer`: `conversations` is a list of `{from: human|gpt, value}` turns,
`image` a file path (or, for in-memory sources, a uint8 array) or None for a
text-only record, `source` the file or data set the record came from (named
in warnings and errors). A record of a file that is not well formed is the
marker `{id, source, malformed}`, `malformed` saying what is wrong.
"""
import json
import os

IMAGE_TOKEN = "<image>"

_ROLES = {"human": "human", "user": "human", "gpt": "gpt", "assistant": "gpt"}


class DataError(ValueError):
  """Malformed input data: the message names the file and the position."""


def read_llava_json(json_path, image_dir=None):
  """Reads a LLaVA-format JSON list into records; image paths join image_dir.

  A file that is not a JSON list raises DataError. A malformed record in it
  becomes a malformed marker, which the example builder skips and counts (or,
  with data.strict, raises on), so one bad line does not stop a long run.
  """
  with open(json_path, encoding="utf-8") as f:
    text = f.read()
  try:
    data = json.loads(text)
  except json.JSONDecodeError as e:
    raise DataError(
        f"{json_path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}"
    ) from None
  if not isinstance(data, list):
    raise DataError(f"{json_path}: expected a JSON list of records, got {type(data).__name__}")
  source = os.fspath(json_path)
  return [_record_from_json(item, index, source, image_dir) for index, item in enumerate(data)]


def _record_from_json(item, index, source, image_dir):
  record_id = str(item.get("id", index)) if isinstance(item, dict) else str(index)
  problem = _structure_problem(item)
  if problem:
    return {"id": record_id, "source": source, "malformed": f"record {index}: {problem}"}
  image = item.get("image")
  if image is not None and image_dir:
    image = os.path.join(image_dir, image)
  record = {"id": record_id, "image": image, "source": source,
            "conversations": [{"from": _ROLES[turn["from"]], "value": turn["value"]}
                              for turn in item["conversations"]]}
  if "answer" in item:
    record["answer"] = str(item["answer"])
  return record


def _structure_problem(item):
  """What keeps a JSON value from being a record, or None: turns go human, gpt, human, ..."""
  if not isinstance(item, dict):
    return f"expected an object, got {type(item).__name__}"
  turns = item.get("conversations")
  if not isinstance(turns, list) or not turns:
    return "'conversations' must be a non-empty list of turns"
  for position, turn in enumerate(turns):
    if not (isinstance(turn, dict) and isinstance(turn.get("value"), str)
            and turn.get("from") in _ROLES):
      return f"turn {position} needs 'from' (human|gpt) and a string 'value', got {turn!r:.200}"
    expected = "human" if position % 2 == 0 else "gpt"
    if _ROLES[turn["from"]] != expected:
      return f"turn {position} is from {turn['from']!r}, expected {expected!r}"
  image = item.get("image")
  if image is not None and not isinstance(image, str):
    return f"'image' must be a file name, got {image!r:.200}"
  return None


def qa_record(record_id, image, question, answer, source):
  """A one-round record `<image>\\n{question}` -> answer, with `answer` kept."""
  return {
      "id": record_id,
      "image": image,
      "conversations": [
          {"from": "human", "value": f"{IMAGE_TOKEN}\n{question}"},
          {"from": "gpt", "value": answer},
      ],
      "answer": answer,
      "source": source,
  }


def conversation_rounds(conversations):
  """[(user_text, assistant_text or None)] with LLaVA's image normalization.

  As LLaVA's `preprocess_multimodal`, every `<image>` is removed and a single
  `<image>\\n` is put at the start of the first user turn that had one.
  """
  rounds = []
  image_placed = False
  for position in range(0, len(conversations), 2):
    user = conversations[position]["value"]
    if IMAGE_TOKEN in user:
      user = user.replace(IMAGE_TOKEN, "").strip()
      if not image_placed:
        user = f"{IMAGE_TOKEN}\n{user}"
        image_placed = True
    answer = conversations[position + 1]["value"] if position + 1 < len(conversations) else None
    rounds.append((user, answer))
  return rounds


def has_image_token(conversations):
  return any(IMAGE_TOKEN in turn["value"] for turn in conversations if turn["from"] == "human")


def first_question(conversations):
  """The first user turn's text with `<image>` and its surrounding newlines removed."""
  return conversations[0]["value"].replace(IMAGE_TOKEN, "").strip() if conversations else ""


def reference_answer(record):
  """The answer evaluation scores against: `answer`, else the first gpt turn."""
  if record.get("answer") is not None:
    return record["answer"]
  turns = record["conversations"]
  return turns[1]["value"] if len(turns) > 1 else None
