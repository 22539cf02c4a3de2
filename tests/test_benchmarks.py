"""Benchmark readers on a tiny fake LLaVA-1.5 eval layout, and the writers' round trips."""
import base64
import csv
import io
import json
import os

import openpyxl
import pytest
from PIL import Image

from vlm_jax.evaluate import BENCHMARKS
from vlm_jax.evaluate import writers

SHORT = "Answer the question using a single word or phrase."
UNANSWERABLE = "When the provided information is insufficient, respond with 'Unanswerable'."
LETTER = "Answer with the option's letter from the given choices directly."


def _png(path, color=(255, 0, 0)):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.new("RGB", (4, 4), color).save(path)


def _png_bytes(color):
  buffer = io.BytesIO()
  Image.new("RGB", (4, 4), color).save(buffer, format="PNG")
  return buffer.getvalue()


def _jsonl(path, records):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in records)


def _json(path, obj):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(obj, f)


def test_registry_ties_reader_scorer_prompt_and_length():
  assert BENCHMARKS.names() == ["counting", "easy_vqa", "facts", "gqa", "lookup", "mmbench", "mme",
                                "ocr", "pope", "scienceqa_img", "seed", "spatial", "textvqa",
                                "vizwiz", "vqav2"]
  lengths = {name: BENCHMARKS.get(name).max_new_tokens for name in BENCHMARKS.names()}
  assert lengths == {"counting": 8, "easy_vqa": 8, "facts": 8, "gqa": 128, "lookup": 8,
                     "mmbench": 1024, "mme": 128, "ocr": 8, "pope": 128, "scienceqa_img": 1024,
                     "seed": 128, "spatial": 8, "textvqa": 128, "vizwiz": 128, "vqav2": 128}
  assert BENCHMARKS.get("vizwiz").prompt_style == "short_answer_unanswerable"
  assert BENCHMARKS.get("textvqa").scorer == "vqa"


def test_gqa_reader_prompts_and_missing_image(tmp_path):
  root = str(tmp_path)
  _png(f"{root}/data/images/n1.jpg")
  _png(f"{root}/data/images/n2.jpg")
  _jsonl(f"{root}/llava_gqa_testdev_balanced.jsonl", [
      {"question_id": "q1", "image": "n1.jpg", "text": f"Is the sky dark?\n{SHORT}",
       "category": "default"},
      {"question_id": "q2", "image": "n2.jpg", "text": "What color is the car?"},
      {"question_id": "q3", "image": "gone.jpg", "text": "Who is there?"},
  ])
  _json(f"{root}/data/testdev_balanced_questions.json", {
      "q1": {"answer": "yes", "imageId": "n1"}, "q2": {"answer": "red"},
      "q3": {"answer": "man"}, "q4": {"answer": "unused"}})
  benchmark = BENCHMARKS.get("gqa")
  data = benchmark.read(root)
  assert [e["question_id"] for e in data.examples] == ["q1", "q2"]
  assert data.examples[0]["prompt"] == f"Is the sky dark?\n{SHORT}"
  assert data.examples[1]["prompt"] == f"What color is the car?\n{SHORT}"
  assert data.examples[0]["image"] == f"{root}/data/images/n1.jpg"
  assert data.examples[0]["max_new_tokens"] == 128
  assert data.missing_images == [f"{root}/data/images/gone.jpg"]
  # The question with the missing image stays annotated, so it counts as unanswered.
  assert data.annotations == {"q1": "yes", "q2": "red", "q3": "man"}
  result = benchmark.score({"q1": "Yes.", "q2": "blue"}, data)
  assert result["accuracy"] == 0.5 and result["n_unanswered"] == 1


def test_vizwiz_and_vqav2_readers(tmp_path):
  root = str(tmp_path)
  _png(f"{root}/vizwiz/test/VizWiz_0.jpg")
  _jsonl(f"{root}/vizwiz/llava_test.jsonl", [
      {"question_id": 0, "image": "VizWiz_0.jpg", "text": "What is this?"}])
  _json(f"{root}/vizwiz/val.json", [{"image": "VizWiz_0.jpg",
                                     "answers": [{"answer": "soup"}] * 10}])
  data = BENCHMARKS.get("vizwiz").read(f"{root}/vizwiz")
  assert data.examples[0]["prompt"] == f"What is this?\n{UNANSWERABLE}\n{SHORT}"
  assert data.annotations is None
  with pytest.raises(ValueError, match="submission"):
    BENCHMARKS.get("vizwiz").score({0: "soup"}, data)
  data = BENCHMARKS.get("vizwiz").read(f"{root}/vizwiz",
                                       annotations_file=f"{root}/vizwiz/val.json")
  assert BENCHMARKS.get("vizwiz").score({0: "Soup."}, data)["accuracy"] == 1.0

  _png(f"{root}/vqav2/test2015/COCO_1.jpg")
  _jsonl(f"{root}/vqav2/llava_vqav2_mscoco_test-dev2015.jsonl", [
      {"question_id": 11, "image": "COCO_1.jpg", "text": f"How many?\n{SHORT}"}])
  _json(f"{root}/vqav2/ann.json", {"annotations": [
      {"question_id": 11, "answers": [{"answer": "2"}] * 2 + [{"answer": "3"}] * 8}]})
  data = BENCHMARKS.get("vqav2").read(f"{root}/vqav2", annotations_file=f"{root}/vqav2/ann.json")
  assert data.annotations == {11: ["2"] * 2 + ["3"] * 8}
  assert BENCHMARKS.get("vqav2").score({11: "two"}, data)["accuracy"] == pytest.approx(0.6)


def test_textvqa_reader_makes_ids_unique(tmp_path):
  root = str(tmp_path)
  _png(f"{root}/train_images/img1.jpg")
  ocr = "Reference OCR token: DAKOTA, DIGITAL"
  _jsonl(f"{root}/llava_textvqa_val_v051_ocr.jsonl", [
      {"question_id": "img1", "image": "img1.jpg", "text": f"What brand?\n{ocr}\n{SHORT}"},
      {"question_id": "img1", "image": "img1.jpg", "text": f"What Year?\n{ocr}\n{SHORT}"},
  ])
  _json(f"{root}/TextVQA_0.5.1_val.json", {"data": [
      {"question_id": 7, "image_id": "img1", "question": "what year?", "answers": ["1999"] * 10},
      {"question_id": 5, "image_id": "img1", "question": "What brand?",
       "answers": ["dakota"] * 10},
  ]})
  data = BENCHMARKS.get("textvqa").read(root)
  assert [(e["question_id"], e["image_id"]) for e in data.examples] == [(5, "img1"), (7, "img1")]
  assert data.examples[0]["prompt"] == f"What brand?\n{ocr}\n{SHORT}"
  assert data.annotations == {5: ["dakota"] * 10, 7: ["1999"] * 10}
  _jsonl(f"{root}/other.jsonl", [
      {"question_id": "img1", "image": "img1.jpg", "text": "Who?"}])
  with pytest.raises(ValueError, match="no annotation"):
    BENCHMARKS.get("textvqa").read(root, questions_file=f"{root}/other.jsonl")


def test_pope_reader_pairs_labels_by_position_within_split(tmp_path):
  root = str(tmp_path)
  for name in ("a.jpg", "b.jpg"):
    _png(f"{root}/val2014/{name}")
  _jsonl(f"{root}/llava_pope_test.jsonl", [
      {"question_id": 1, "image": "a.jpg", "text": f"Is there a dog in the image?\n{SHORT}",
       "category": "adversarial"},
      {"question_id": 2, "image": "b.jpg", "text": "Is there a cat in the image?",
       "category": "random"},
      {"question_id": 3, "image": "b.jpg", "text": "Is there a car in the image?",
       "category": "adversarial"},
  ])
  _jsonl(f"{root}/coco/coco_pope_adversarial.json", [
      {"question_id": 1, "image": "a.jpg", "label": "yes"},
      {"question_id": 2, "image": "b.jpg", "label": "no"}])
  _jsonl(f"{root}/coco/coco_pope_random.json", [
      {"question_id": 1, "image": "b.jpg", "label": "yes"}])
  data = BENCHMARKS.get("pope").read(root)
  assert data.annotations == {1: {"label": "yes", "split": "adversarial"},
                              3: {"label": "no", "split": "adversarial"},
                              2: {"label": "yes", "split": "random"}}
  result = BENCHMARKS.get("pope").score({1: "Yes", 2: "NO", 3: "No"}, data)
  assert result["splits"]["adversarial"]["accuracy"] == 1.0
  assert result["splits"]["random"]["accuracy"] == 1.0  # `NO` reads as yes

  _jsonl(f"{root}/coco/coco_pope_random.json", [])
  with pytest.raises(ValueError, match="0 labels"):
    BENCHMARKS.get("pope").read(root)
  _jsonl(f"{root}/coco/coco_pope_random.json", [{"image": "a.jpg", "label": "yes"}])
  with pytest.raises(ValueError, match="about image"):
    BENCHMARKS.get("pope").read(root)


def _scienceqa_layout(root):
  _png(f"{root}/images/test/5/image.png")
  _json(f"{root}/llava_test_CQM-A.json", [
      {"id": "4", "conversations": [
          {"from": "human", "value": "Which is a noun?\nA. run\nB. dog"},
          {"from": "gpt", "value": "B"}]},
      {"id": "5", "image": "5/image.png", "conversations": [
          {"from": "human",
           "value": "<image>\nContext: Select the best answer.\nWhich is shiny?\nA. foil\nB. wool"},
          {"from": "gpt", "value": "A"}]},
      {"id": "6", "image": "6/image.png", "conversations": [
          {"from": "human", "value": "<image>\nWhat is shown?\nA. a map\nB. a cat\nC. a dog"},
          {"from": "gpt", "value": "A"}]},
  ])
  _json(f"{root}/problems.json", {
      "4": {"choices": ["run", "dog"], "answer": 1, "image": None},
      "5": {"choices": ["foil", "wool"], "answer": 0, "image": "image.png"},
      "6": {"choices": ["a map", "a cat", "a dog"], "answer": 0, "image": "image.png"},
      "9": {"choices": ["x", "y"], "answer": 0, "image": None},
  })
  _json(f"{root}/pid_splits.json", {"test": ["4", "5", "6"], "train": ["9"]})


def test_scienceqa_reader(tmp_path):
  root = str(tmp_path)
  _scienceqa_layout(root)
  benchmark = BENCHMARKS.get("scienceqa_img")
  data = benchmark.read(root)
  assert [e["question_id"] for e in data.examples] == ["5"]
  assert data.examples[0]["prompt"] == (
      f"Context: Select the best answer.\nWhich is shiny?\nA. foil\nB. wool\n{LETTER}")
  assert data.examples[0]["max_new_tokens"] == 1024
  assert data.missing_images == [f"{root}/images/test/6/image.png"]
  assert set(data.annotations) == {"5", "6"}
  everything = benchmark.read(root, image_only=False)
  assert [e["question_id"] for e in everything.examples] == ["4", "5"]
  assert everything.examples[0]["image"] is None
  result = benchmark.score({"4": "B", "5": "A"}, everything)
  assert result["accuracy"] == 1.0 and result["img_accuracy"] == 1.0
  assert result["n_img"] == 1 and result["n_unanswered"] == 1


def test_mmbench_reader(tmp_path):
  tsv = str(tmp_path / "mmbench_dev_20230712.tsv")
  red, blue = _png_bytes((255, 0, 0)), _png_bytes((0, 0, 255))
  header = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category",
            "l2-category", "image"]
  rows = [
      [0, "What color?", "Look closely.", "red", "blue", "", "", "A", "color", "attr",
       base64.b64encode(red).decode()],
      [1000000, "What color?", "Look closely.", "blue", "red", "", "", "B", "color", "attr",
       base64.b64encode(red).decode()],
      [1, "Which shape?", "nan", "square", "circle", "triangle", "", "C", "shape", "attr",
       base64.b64encode(blue).decode()],
      [2, "Lost?", "", "yes", "no", "", "", "A", "misc", "other", ""],
  ]
  with open(tsv, "w", newline="") as f:
    writer = csv.writer(f, delimiter="\t")
    writer.writerow(header)
    writer.writerows(rows)
  data = BENCHMARKS.get("mmbench").read(str(tmp_path))
  assert [e["question_id"] for e in data.examples] == [0, 1000000, 1]
  assert data.examples[0]["prompt"] == f"Look closely.\nWhat color?\nA. red\nB. blue\n{LETTER}"
  assert data.examples[2]["prompt"] == (
      f"Which shape?\nA. square\nB. circle\nC. triangle\n{LETTER}")
  assert Image.open(io.BytesIO(data.examples[2]["image"])).getpixel((0, 0)) == (0, 0, 255)
  assert data.missing_images == ["row 2"]
  assert data.annotations[1000000] == {"answer": "B", "options": {"A": "blue", "B": "red"},
                                       "category": "color", "l2_category": "attr"}
  result = BENCHMARKS.get("mmbench").score({0: "A", 1000000: "B", 1: "triangle"}, data)
  assert result["n_questions"] == 2 and result["accuracy"] == 1.0
  assert result["n_unanswered"] == 1

  predictions = {0: "A", 1000000: "B\x07", 7: "stray"}
  xlsx = str(tmp_path / "upload" / "model.xlsx")
  report = writers.write_mmbench_submission(xlsx, tsv, predictions)
  assert report == {"n_written": 4, "missing_ids": [1, 2], "unknown_ids": [7]}
  sheet = openpyxl.load_workbook(xlsx).active
  table = [list(r) for r in sheet.iter_rows(values_only=True)]
  assert table[0] == ["index", "question", "A", "B", "C", "D", "prediction", "answer"]
  assert table[1] == [0, "What color?", "red", "blue", None, None, "A", "A"]
  assert table[2][6] == "B"  # the control character is dropped
  assert table[3][0] == 1 and table[3][6] is None


def _mme_layout(root):
  mme = f"{root}/MME_Benchmark_release_version"
  # A subtask with images/ + questions_answers_YN/, and a flat one.
  _png(f"{mme}/artwork/images/10.jpg")
  os.makedirs(f"{mme}/artwork/questions_answers_YN")
  with open(f"{mme}/artwork/questions_answers_YN/10.txt", "w") as f:
    f.write("Is this a painting? Please answer yes or no.\tYes\n"
            "Is this a statue?  Please answer yes or no.\tNo\n")
  _png(f"{mme}/code_reasoning/0001.png")
  with open(f"{mme}/code_reasoning/0001.txt", "w") as f:
    f.write("Is the output 'Hello'? Please answer yes or no.\tYes\n"
            "Is the output 'World'? Please answer yes or no.\tNo\n")
  _jsonl(f"{root}/llava_mme.jsonl", [
      {"question_id": "artwork/images/10.jpg", "image": "artwork/images/10.jpg",
       "text": f"Is this a painting?\n{SHORT}", "category": "artwork"},
      {"question_id": "artwork/images/10.jpg", "image": "artwork/images/10.jpg",
       "text": f"Is this a statue?\n{SHORT}", "category": "artwork"},
      {"question_id": "code_reasoning/0001.png", "image": "code_reasoning/0001.png",
       "text": f"Is the output 'Hello'?\n{SHORT}", "category": "code_reasoning"},
      {"question_id": "code_reasoning/0001.png", "image": "code_reasoning/0001.png",
       "text": f"Is the output 'World'?\n{SHORT}", "category": "code_reasoning"},
  ])


def test_mme_reader(tmp_path):
  root = str(tmp_path)
  _mme_layout(root)
  data = BENCHMARKS.get("mme").read(root)
  ids = [e["question_id"] for e in data.examples]
  assert ids == ["artwork/images/10.jpg#0", "artwork/images/10.jpg#1",
                 "code_reasoning/0001.png#0", "code_reasoning/0001.png#1"]
  assert data.examples[1]["prompt"] == f"Is this a statue?\n{SHORT}"
  assert [a["answer"] for a in data.annotations.values()] == ["Yes", "No", "Yes", "No"]
  assert data.annotations[ids[2]] == {"category": "code_reasoning",
                                      "image_id": "code_reasoning/0001.png", "answer": "Yes"}
  result = BENCHMARKS.get("mme").score(dict(zip(ids, ["Yes", "No", "Yes", "Yes"])), data)
  assert result["perception_score"] == pytest.approx(200.0)
  assert result["cognition_score"] == pytest.approx(50.0)


def test_seed_reader(tmp_path):
  root = str(tmp_path)
  _png(f"{root}/SEED-Bench-image/1.jpg")
  _png(f"{root}/SEED-Bench-video-image/v.png")
  _jsonl(f"{root}/llava-seed-bench.jsonl", [
      {"question_id": 101, "image": "SEED-Bench-image/1.jpg",
       "text": f"How many?\nA. 1\nB. 2\nC. 3\nD. 4\n{LETTER}"},
      {"question_id": 102, "image": "SEED-Bench-video-image/v.png",
       "text": "What happens?\nA. run\nB. jump\nC. sit\nD. swim"},
  ])
  _json(f"{root}/SEED-Bench.json", {
      "question_type": {"Instances Counting": 5, "Action Recognition": 10},
      "questions": [
          {"question_id": "101", "answer": "B", "data_type": "image", "question_type_id": 5},
          {"question_id": "102", "answer": "A", "data_type": "video", "question_type_id": 10},
      ]})
  data = BENCHMARKS.get("seed").read(root)
  assert [e["question_id"] for e in data.examples] == ["101", "102"]
  assert data.examples[1]["prompt"] == f"What happens?\nA. run\nB. jump\nC. sit\nD. swim\n{LETTER}"
  assert data.annotations["102"]["question_type"] == "Action Recognition"
  result = BENCHMARKS.get("seed").score({"101": "B", "102": "B"}, data)
  assert result["image_accuracy"] == 1.0 and result["video_accuracy"] == 0.0


def test_read_needs_a_folder_or_paths():
  with pytest.raises(ValueError, match="questions_file"):
    BENCHMARKS.get("gqa").read()


# ---------------------------------------------------------------- writers

def test_answers_jsonl_round_trip(tmp_path):
  path = str(tmp_path / "answers" / "model.jsonl")
  answers = [{"question_id": "q1", "prompt": "Why?", "text": "Because."},
             {"question_id": 2, "prompt": "How?", "text": "So", "answer_id": "fixed",
              "metadata": {"budget": 4}}]
  assert writers.write_answers_jsonl(path, answers, model_id="tiny") == 2
  with open(path) as f:
    records = [json.loads(line) for line in f]
  assert set(records[0]) == {"question_id", "prompt", "text", "answer_id", "model_id",
                             "metadata"}
  assert records[0]["model_id"] == "tiny" and records[0]["metadata"] == {}
  assert records[1]["answer_id"] == "fixed" and records[1]["metadata"] == {"budget": 4}
  assert records[0]["answer_id"] != records[1]["answer_id"]
  assert writers.read_answers_jsonl(path) == {"q1": "Because.", 2: "So"}
  writers.write_answers_jsonl(path, answers + answers[:1], model_id="tiny")
  with pytest.raises(ValueError, match="twice"):
    writers.read_answers_jsonl(path)


def test_vqav2_and_vizwiz_submissions(tmp_path):
  questions = str(tmp_path / "questions.jsonl")
  _jsonl(questions, [
      {"question_id": 1, "image": "VizWiz_1.jpg", "text": "a"},
      {"question_id": 2, "image": "VizWiz_2.jpg", "text": "b"},
  ])
  predictions = {1: "It's Two!", 9: "stray"}
  vqav2 = str(tmp_path / "vqav2.json")
  report = writers.write_vqav2_submission(vqav2, questions, predictions)
  assert report == {"n_written": 2, "missing_ids": [2], "unknown_ids": [9]}
  with open(vqav2) as f:
    assert json.load(f) == [{"question_id": 1, "answer": "it 's 2"},
                            {"question_id": 2, "answer": ""}]
  vizwiz = str(tmp_path / "vizwiz.json")
  writers.write_vizwiz_submission(vizwiz, questions, {1: "Unanswerable.", 2: "the Soup"})
  with open(vizwiz) as f:
    assert json.load(f) == [{"image": "VizWiz_1.jpg", "answer": "unanswerable"},
                            {"image": "VizWiz_2.jpg", "answer": "soup"}]


def test_builtin_benchmark_scores_its_own_answers():
  data = BENCHMARKS.get("easy_vqa").read(num_examples=25)
  assert len(data.examples) == 25 and not data.missing_images
  first = data.examples[0]
  assert first["prompt"] and "<image>" not in first["prompt"]
  truth = dict(data.annotations)
  result = BENCHMARKS.get("easy_vqa").score(truth, data)
  assert result["accuracy"] == 1.0 and result["n_scored"] == 25
  wrong = dict(truth, **{first["question_id"]: "not an answer"})
  assert BENCHMARKS.get("easy_vqa").score(wrong, data)["accuracy"] == 24 / 25
