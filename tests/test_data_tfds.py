"""The TFDS source on mocked data (tfds.testing.mock_data: nothing downloaded, no TensorFlow)."""
import ml_collections
import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from vlm_jax import data  # pylint: disable=wrong-import-position
from vlm_jax.data.tfds_source import TfdsRecords  # pylint: disable=wrong-import-position


class TinyImageQuestions(tfds.core.GeneratorBasedBuilder):
  """An image-question data set with the features the source reads."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(20, 12, 3)),
        "question": tfds.features.Text(),
        "answer": tfds.features.Text(),
        "id": tfds.features.Text(),
    }))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples(), "test": self._generate_examples()}

  def _generate_examples(self):
    yield from ()


def test_tfds_source_reads_mock_data_into_the_pipeline(tmp_path):
  # MockPolicy.USE_CODE builds random examples from the feature spec alone.
  with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
    raw = tfds.data_source("tiny_image_questions", split="test", data_dir=str(tmp_path))
    records = TfdsRecords("tiny_image_questions", "test", data_dir=str(tmp_path))
    assert len(records) == 6
    for index in range(6):
      record, example = records[index], raw[index]
      text = {key: value.decode() if isinstance(value, bytes) else value
              for key, value in example.items() if key != "image"}
      assert record["id"] == text["id"]
      assert record["conversations"] == [{"from": "human", "value": "<image>\n" + text["question"]},
                                         {"from": "gpt", "value": text["answer"]}]
      assert record["answer"] == text["answer"]
      np.testing.assert_array_equal(record["image"], example["image"])

    config = ml_collections.ConfigDict(dict(
        source="tfds", task="tiny_image_questions", split="test", tfds_data_dir=str(tmp_path),
        image_size=8, max_length=128, bucket_lengths=(64, 128), batch_size=4, read_threads=1))
    batches = list(data.make_eval_examples(config))
    assert [b["valid"].sum() for b in batches] == [4, 2]
    assert sum((b["question_id"][:2] for b in batches[1:]), []) == [records[4]["id"], records[5]["id"]]
    assert batches[0]["pixels"].shape == (4, 8, 8, 3)
    config.split = "train"
    train = next(iter(data.make_dataset(config)))
    assert (train["labels"] != -100).any()
