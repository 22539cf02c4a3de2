"""LLaVA-format records: reading, validation and conversation rounds.

A record is a dict `{id, image, conversations, source}` plus an optional
`answer`: `conversations` is a list of `{from: human|gpt, value}` turns,
`image` a file path (or, for in-memory sources, a uint8 array), `source` the
file or data set the record came from (named in warnings and errors).
"""
import json
import os

IMAGE_TOKEN = "<image>"

_ROLES = {"human": "human", "user": "human", "gpt": "gpt", "assistant": "gpt"}


class DataError(ValueError):
  """Malformed input data: the message names the file and the position."""


def read_llava_json(json_path, image_dir=None):
  """Reads a LLaVA-format JSON list into records; image paths join image_dir."""
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
  return [_record_from_json(item, index, json_path, image_dir) for index, item in enumerate(data)]


def _record_from_json(item, index, json_path, image_dir):
  where = f"{json_path}: record {index}"
  if not isinstance(item, dict):
    raise DataError(f"{where}: expected an object, got {type(item).__name__}")
  record_id = str(item.get("id", index))
  where = f"{json_path}: record {index} (id {record_id!r})"
  turns = item.get("conversations")
  if not isinstance(turns, list):
    raise DataError(f"{where}: 'conversations' must be a list of turns")
  conversations = []
  for turn in turns:
    if not (isinstance(turn, dict) and isinstance(turn.get("value"), str)
            and turn.get("from") in _ROLES):
      raise DataError(f"{where}: each turn needs 'from' (human|gpt) and a string 'value', got {turn!r}")
    conversations.append({"from": _ROLES[turn["from"]], "value": turn["value"]})
  check_alternating(conversations, where)
  image = item.get("image")
  if image is not None:
    if not isinstance(image, str):
      raise DataError(f"{where}: 'image' must be a file name, got {image!r}")
    image = os.path.join(image_dir, image) if image_dir else image
  record = {"id": record_id, "image": image, "conversations": conversations,
            "source": os.fspath(json_path)}
  if "answer" in item:
    record["answer"] = str(item["answer"])
  return record


def check_alternating(conversations, where):
  """Raises DataError unless turns go human, gpt, human, gpt, ..."""
  for position, turn in enumerate(conversations):
    expected = "human" if position % 2 == 0 else "gpt"
    if turn["from"] != expected:
      raise DataError(f"{where}: turn {position} is from {turn['from']!r}, expected {expected!r}")


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
