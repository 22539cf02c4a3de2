"""Fine-tuning a converted llava-hf download: the first step's loss of `vlm-jax train
--set init_from=CHECKPOINT` is the transformers model's loss on the same batch.

The download is test_e2e_hf_llava's (Qwen2 LLM). The run: configs/train/tiny.py with the
identity compressor (the checkpoint's own compressor fields set, as training from a
converted model must repeat them), float32, one step of one batch holding all three
records of a LLaVA JSON (non-square images) in file order. The tokenizer, chat template,
image preprocessing and image token are not named: they come from the checkpoint.

The step's reported loss is computed before its update (whatever the learning rate),
and is read from the TensorBoard event file (float32) and the stdout lines.

transformers' loss (user_folders.hf_llava_loss): each record's whole conversation through
the processor's chat template and processor(images, text), labels on the answer tokens
and the `<|im_end|>` after them only; the mean cross-entropy over all labelled tokens of
the batch (one sum over the batch divided by its labelled-token count), which is how
vlm_jax.train.loss / step average: over the batch's answer tokens, not per row.
"""
import json
import os
import pathlib
import re

import pytest
from PIL import Image

import train_fixtures
import user_folders

REPO = pathlib.Path(__file__).resolve().parent.parent
TRAIN_CONFIG = REPO / "configs" / "train" / "tiny.py"
RECORDS = len(user_folders.FINETUNE_RECORDS)


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory):
  return user_folders.llava_hf_folder(tmp_path_factory.mktemp("llava"), family="qwen2")


@pytest.fixture(scope="module")
def converted(downloaded, tmp_path_factory):
  return user_folders.converted(downloaded.path, tmp_path_factory.mktemp("converted") / "llava")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  return user_folders.llava_json_folder(str(tmp_path_factory.mktemp("finetune_data")))


def compressor_overrides(checkpoint):
  """`--set model.compressor.KEY=VALUE` for each compressor field of a converted checkpoint
  (a run from it must have the checkpoint's compressor)."""
  with open(os.path.join(checkpoint, "config.json")) as f:
    compressor = json.load(f)["compressor"]
  args = []
  for key, value in compressor.items():
    value = tuple(value) if isinstance(value, list) else value
    args += ["--set", f"model.compressor.{key}={value!r}"]
  return args


@pytest.fixture(scope="module")
def first_step(converted, data, tmp_path_factory):
  """(exit status, workdir, its stdout and stderr) of a one-step fine-tuning run from the
  checkpoint."""
  json_path, image_dir, _ = data
  workdir = tmp_path_factory.mktemp("run")
  capture = tmp_path_factory.mktemp("stdout") / "stdout.txt"
  args = ["train", "--config",
          f"{TRAIN_CONFIG}:compressor=identity,stage=all,batch={RECORDS},steps=1,lr=1e-4",
          "--workdir", workdir,
          "--set", f"init_from={converted}",
          "--set", "data.source=llava_json", "--set", f"data.json_path={json_path}",
          "--set", f"data.image_dir={image_dir}", "--set", "data.shuffle=False",
          "--set", "data.max_length=256", "--set", "data.bucket_lengths=(64, 128, 256)",
          "--set", "model.dtype=float32", "--set", "mesh.num_devices=1",
          "--set", "log_every=1", *compressor_overrides(converted)]
  with pytest.MonkeyPatch.context() as patch, open(capture, "w") as out:
    patch.setattr("sys.stdout", out)
    patch.setattr("sys.stderr", out)  # where a refused command says why
    status = user_folders.run_cli(args)
  return status, workdir, capture.read_text()


@pytest.fixture(scope="module")
def reference(downloaded, data):
  """(loss, labelled tokens) of transformers on the batch of all records."""
  _, image_dir, records = data
  examples = [(Image.open(os.path.join(image_dir, r["image"])),
               r["conversations"][0]["value"].replace("<image>", "").strip(),
               r["conversations"][1]["value"]) for r in records]
  return user_folders.hf_llava_loss(downloaded, examples)


def test_reference_labels_answers_and_end_of_turn_only(downloaded, data, reference):
  _, image_dir, records = data
  _, count = reference
  tokenizer = downloaded.tokenizer
  answers = [r["conversations"][1]["value"] for r in records]
  assert count == sum(len(tokenizer(a + user_folders.IM_END, add_special_tokens=False).input_ids)
                      for a in answers)
  image = Image.open(os.path.join(image_dir, records[0]["image"]))
  question = records[0]["conversations"][0]["value"].replace("<image>", "").strip()
  inputs, labels = user_folders.hf_llava_labelled(downloaded, image, question, answers[0])
  labelled = inputs["input_ids"][0][labels[0] != -100].tolist()
  assert tokenizer.decode(labelled) == answers[0] + user_folders.IM_END


def test_first_step_loss_equals_transformers(first_step, reference):
  status, workdir, output = first_step
  assert status == 0, output
  want, count = reference
  logged = train_fixtures.event_scalars(pathlib.Path(workdir) / "tensorboard", "loss")
  assert sorted(logged) == [1]
  assert logged[1] == pytest.approx(want, abs=1e-4)
  tokens = train_fixtures.event_scalars(pathlib.Path(workdir) / "tensorboard", "answer_tokens")
  assert tokens[1] == count
  printed = re.search(r"^step 1: loss ([0-9.]+)$", output, re.MULTILINE)
  assert printed, output
  assert float(printed.group(1)) == pytest.approx(want, abs=1e-4 + 5e-5)  # printed to 4 places
