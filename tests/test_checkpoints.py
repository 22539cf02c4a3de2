"""`vlm-jax convert` writes an orbax checkpoint that loads back to the same model."""
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import transformers

import hf_models
from vlm_jax import checkpoints, cli, convert, models


@pytest.fixture(scope="module")
def qwen_folder(tmp_path_factory):
  model = hf_models.randomize(transformers.Qwen2ForCausalLM(hf_models.qwen2_config()))
  return hf_models.save(model, tmp_path_factory.mktemp("hf") / "qwen")


def test_convert_cli_round_trip(qwen_folder, tmp_path, capsys):
  assert cli.main(["convert", qwen_folder, str(tmp_path / "ckpt")]) == 0
  assert "llm" in capsys.readouterr().out
  config, params = checkpoints.load(tmp_path / "ckpt")
  want_config, want_params = convert.from_hf(qwen_folder)
  assert config.to_dict() == want_config.to_dict()
  ids = jnp.arange(1, 9)[None]
  out = models.build(config).apply({"params": params}, ids)
  want = models.build(want_config).apply({"params": want_params}, ids)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(want))


def test_unsupported_architecture_is_named(qwen_folder, tmp_path):
  folder = shutil.copytree(qwen_folder, tmp_path / "other")
  hf = json.loads((folder / "config.json").read_text())
  hf["architectures"] = ["MistralForCausalLM"]
  (folder / "config.json").write_text(json.dumps(hf))
  with pytest.raises(ValueError, match="MistralForCausalLM"):
    convert.from_hf(folder)


def test_shape_mismatch_names_tensor(qwen_folder, tmp_path):
  folder = shutil.copytree(qwen_folder, tmp_path / "bad")
  hf = json.loads((folder / "config.json").read_text())
  hf["intermediate_size"] = 80
  (folder / "config.json").write_text(json.dumps(hf))
  with pytest.raises(ValueError, match=r"model\.layers\.0\.mlp\.\w+_proj\.weight"):
    convert.from_hf(folder)


def test_missing_tensor_is_named(qwen_folder, tmp_path):
  from safetensors.numpy import load_file, save_file
  folder = shutil.copytree(qwen_folder, tmp_path / "missing")
  tensors = load_file(folder / "model.safetensors")
  del tensors["model.layers.1.self_attn.k_proj.bias"]
  save_file(tensors, folder / "model.safetensors")
  with pytest.raises(KeyError, match=r"model\.layers\.1\.self_attn\.k_proj\.bias"):
    convert.from_hf(folder)


def test_sharded_safetensors_index(tmp_path):
  model = hf_models.randomize(transformers.Qwen2ForCausalLM(hf_models.qwen2_config()))
  model.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
  assert (tmp_path / "sharded" / "model.safetensors.index.json").exists()
  _, params = convert.from_hf(tmp_path / "sharded")
  _, want = convert.from_hf(hf_models.save(model, tmp_path / "single"))
  assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(want)))


def test_load_places_params_with_shardings(qwen_folder, tmp_path):
  from vlm_jax import sharding
  assert cli.main(["convert", qwen_folder, str(tmp_path / "ckpt")]) == 0
  config = checkpoints.load_config(tmp_path / "ckpt")
  mesh = sharding.make_mesh(fsdp=2, tensor=2, devices=jax.devices()[:4])
  shardings = sharding.logical_shardings(models.abstract_params(config), mesh)
  _, params = checkpoints.load(tmp_path / "ckpt", shardings)
  _, plain = checkpoints.load(tmp_path / "ckpt")
  embedding = params["embed"]["embedding"]
  assert embedding.sharding == shardings["embed"]["embedding"]
  assert not embedding.sharding.is_fully_replicated
  np.testing.assert_array_equal(np.asarray(embedding), np.asarray(plain["embed"]["embedding"]))
