"""`vlm-jax export --format hf`: models trained here as Hugging Face folders, proven exact.

Each model is ours (random params in our layout, saved as our checkpoint with a tokenizer
and a processor section), exported, then read back by our importer (bit for bit), by
transformers (logits within 1e-4, the same greedy tokens) and, for LLaVA-QueCC, by a
PyTorch QueCC of the paper's definition (within 1e-5).
"""
import json
import math
import os
import subprocess
import sys

import flax
import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import ml_dtypes
import numpy as np
import pytest
import torch
import transformers
from safetensors import safe_open

import hf_models
import user_folders
from torch_quecc import TorchQueCC
from vlm_jax import checkpoints, cli, compressors, errors, export, models
from vlm_jax.compressors import kernel_resize
from vlm_jax.convert import from_hf, hf_config
from vlm_jax.data import processor as processor_lib
from vlm_jax.data.images import preprocess_image
from vlm_jax.generate import Generator
from vlm_jax.models import llm as llm_lib
from vlm_jax.models import vision as vision_lib
from vlm_jax.train import multi_budget
from vlm_jax.train.checkpointing import Checkpointer
from vlm_jax.train.state import TrainState

TOL = 1e-4
NEW = 8  # generated tokens
KV_LAYERS = (2, 3)
KERNEL = ("compressor", "q_downsample", "kernel")
LLAMA3_ROPE = dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=16)


# --- our models ----------------------------------------------------------------------


def llm_config(family, vocab_size, **overrides):
  cfg = llm_lib.default_config()
  cfg.update(dict(family=family, vocab_size=vocab_size, hidden_size=64, intermediate_size=96,
                  num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16,
                  qkv_bias=family == "qwen2", max_position_embeddings=256) | overrides)
  return cfg


def clip_config():
  """CLIP tower: 24 px, 4 px patches (a 6 x 6 grid), 3 layers of width 32."""
  cfg = vision_lib.default_config()
  cfg.update(family="clip", image_size=24, patch_size=4, hidden_size=32, intermediate_size=48,
             num_layers=3, num_heads=4, layer_norm_eps=1e-5, hidden_act="quick_gelu")
  return cfg


def vlm_config(compressor, vocab_size, vision=None, **compressor_fields):
  fields = dict(select_layer=-2, kv_layers=KV_LAYERS, **compressor_fields)
  return hf_config.model_config(
      "vlm", llm=llm_config("qwen2", vocab_size, tie_embeddings=False),
      vision=vision or clip_config(),
      compressor=compressors.default_config(name=compressor, **fields),
      projector=dict(name="mlp2x_gelu"), image_token_id=-200)


def random_params(config, seed=0):
  """Every param random (norm scales around 1), float32 numpy."""
  rng = np.random.default_rng(seed)
  shapes = flax.traverse_util.flatten_dict(nn.unbox(models.abstract_params(config)))
  return flax.traverse_util.unflatten_dict({
      path: (1.0 if path[-1] == "scale" else 0.0) + 0.2 * rng.standard_normal(s.shape, np.float32)
      for path, s in shapes.items()})


def save_model(path, config, params, tokenizer=None, **processor):
  """Our checkpoint at `path`: `tokenizer` under tokenizer/, a processor section."""
  config = ml_collections.ConfigDict(config.to_dict())
  config.processor = dict.fromkeys(processor_lib.KEYS)
  config.processor.update(eos_token_ids=[], **processor)
  if tokenizer is not None:
    tokenizer.save_pretrained(os.path.join(path, checkpoints.TOKENIZER_DIR))
    config.processor.update(tokenizer=checkpoints.TOKENIZER_DIR,
                            eos_token_ids=[tokenizer.eos_token_id])
  checkpoints.save(path, config, params)
  return str(path)


def flat(params):
  return flax.traverse_util.flatten_dict(params)


def assert_same_params(got, want, cast=lambda x: x):
  got, want = flat(got), flat(want)
  assert set(got) == set(want)
  for path, value in want.items():
    np.testing.assert_array_equal(got[path], cast(np.asarray(value)), err_msg="/".join(path))


def architecture(config):
  """The config less how it is fed and its compute dtype."""
  return {k: v for k, v in json.loads(config.to_json()).items() if k not in ("processor", "dtype")}


# --- LLMs ----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["qwen2_tied", "llama3_untied"])
def llm(request, tmp_path_factory):
  """(our config, params, checkpoint, export, tokenizer) of a Qwen2 (tied) or Llama with
  llama3 rope scaling (untied)."""
  root = tmp_path_factory.mktemp(request.param)
  if request.param == "qwen2_tied":
    tokenizer = user_folders.byte_level_tokenizer()
    cfg = llm_config("qwen2", user_folders.padded_vocab(tokenizer), tie_embeddings=True)
  else:
    tokenizer = user_folders.byte_level_tokenizer(bos=True)
    cfg = llm_config("llama", user_folders.padded_vocab(tokenizer), num_kv_heads=1,
                     tie_embeddings=False, rope_theta=500000.0, rms_norm_eps=1e-5)
    cfg.rope_scaling = LLAMA3_ROPE
  config = hf_config.model_config("llm", llm=cfg)
  params = random_params(config)
  ckpt = save_model(root / "ckpt", config, params, tokenizer, template="hf")
  export.to_hf(ckpt, str(root / "hf"))
  return config, params, ckpt, str(root / "hf"), tokenizer


def test_llm_round_trip_bit_for_bit(llm):
  config, params, _, exported, _ = llm
  got_config, got = from_hf(exported)
  assert architecture(got_config) == architecture(config)
  assert_same_params(got, params)
  assert got_config.processor.template == "hf"


def test_llm_config_rope_for_transformers_4_and_5(llm):
  config, _, _, exported, _ = llm
  with open(os.path.join(exported, "config.json")) as f:
    hf = json.load(f)
  scaling = architecture(config)["llm"]["rope_scaling"]
  rope = scaling or {"rope_type": "default"}
  assert hf["rope_parameters"] == dict(rope, rope_theta=config.llm.rope_theta)  # 5.x
  assert hf["rope_theta"] == config.llm.rope_theta  # 4.x
  assert hf.get("rope_scaling") == scaling
  assert hf["tie_word_embeddings"] == config.llm.tie_embeddings
  # A 4.x reader sees only the top-level keys: they alone give the same model.
  legacy = {k: v for k, v in hf.items() if k != "rope_parameters"}
  assert hf_config.llm_config(legacy).to_dict() == config.llm.to_dict()
  assert transformers.AutoConfig.for_model(**legacy).rope_parameters == hf["rope_parameters"]


def test_llm_transformers_logits_and_greedy_tokens(llm):
  config, params, _, exported, tokenizer = llm
  model = transformers.AutoModelForCausalLM.from_pretrained(exported, dtype=torch.float32).eval()
  vocab = config.llm.vocab_size
  ids, mask = hf_models.padded_batch(np.random.default_rng(1), vocab, [11, 6], 11)
  with torch.no_grad():
    want = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits.numpy()
  got = np.asarray(models.build(config).apply({"params": params}, jnp.asarray(ids),
                                              jnp.asarray(mask)))
  assert np.abs(got - want)[mask > 0].max() <= TOL

  prompts, prompt_mask = np.flip(ids, 1).copy(), np.flip(mask, 1).copy()  # left-padded
  eos = tokenizer.eos_token_id
  ours = Generator(config, max_new_tokens=NEW, eos_id=eos, pad_id=0)(params, prompts, prompt_mask)
  with torch.no_grad():
    theirs = model.generate(input_ids=torch.tensor(prompts),
                            attention_mask=torch.tensor(prompt_mask), do_sample=False,
                            max_new_tokens=NEW, eos_token_id=eos,
                            pad_token_id=0).numpy()[:, prompts.shape[1]:]
  np.testing.assert_array_equal(ours, np.pad(theirs, ((0, 0), (0, NEW - theirs.shape[1]))))


def test_llm_tokenizer_carried_over(llm):
  _, _, ckpt, exported, tokenizer = llm
  for name in os.listdir(os.path.join(ckpt, checkpoints.TOKENIZER_DIR)):
    with open(os.path.join(ckpt, checkpoints.TOKENIZER_DIR, name), "rb") as a, \
         open(os.path.join(exported, name), "rb") as b:
      assert a.read() == b.read(), name
  loaded = transformers.AutoTokenizer.from_pretrained(exported)
  text = "What colour is the car?"
  assert loaded(text).input_ids == tokenizer(text).input_ids
  assert transformers.GenerationConfig.from_pretrained(exported).eos_token_id == \
      tokenizer.eos_token_id


# --- LLaVA ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
  """A LLaVA trained here (placeholder -200) with a tokenizer that has `<image>`, exported."""
  root = tmp_path_factory.mktemp("llava")
  tokenizer = user_folders.byte_level_tokenizer()
  config = vlm_config("identity", user_folders.padded_vocab(tokenizer))
  params = random_params(config, seed=1)
  never = tokenizer.convert_tokens_to_ids([user_folders.IMAGE, user_folders.PAD])
  params["llm"]["lm_head"]["kernel"][:, never] = 0  # logit 0: never the greedy pick
  ckpt = save_model(root / "ckpt", config, params, tokenizer, template="hf", image_token="<image>",
                    image_preprocess="clip", image_mean=user_folders.OWN_MEAN,
                    image_std=user_folders.OWN_STD, aspect="square")
  export.to_hf(ckpt, str(root / "hf"))
  return config, params, str(root / "hf"), tokenizer


def test_llava_round_trip_bit_for_bit(llava):
  config, params, exported, tokenizer = llava
  got_config, got = from_hf(exported)
  assert_same_params(got, params)
  for part in ("llm", "vision", "projector"):
    assert got_config[part].to_dict() == config[part].to_dict()
  assert (got_config.compressor.name, got_config.compressor.select_layer) == ("identity", -2)
  assert got_config.image_token_id == tokenizer.convert_tokens_to_ids("<image>")
  fed = got_config.processor
  assert (fed.template, fed.image_token, fed.image_preprocess) == ("hf", "<image>", "clip")
  np.testing.assert_allclose(fed.image_mean, user_folders.OWN_MEAN)
  np.testing.assert_allclose(fed.image_std, user_folders.OWN_STD)


def _expanded(ids, mask, image_id, count):
  """transformers' prompts: the placeholder -200 as `count` image tokens."""
  repeat = np.where(ids == -200, count, 1)
  return (np.stack([np.repeat(np.where(r == -200, image_id, r), n) for r, n in zip(ids, repeat)]),
          np.stack([np.repeat(m, n) for m, n in zip(mask, repeat)]))


def test_llava_transformers_logits_and_greedy_tokens(llava):
  config, params, exported, tokenizer = llava
  model = transformers.LlavaForConditionalGeneration.from_pretrained(
      exported, dtype=torch.float32).eval()
  image_id, v = model.config.image_token_index, vision_lib.grid_size(config.vision) ** 2
  rng = np.random.default_rng(2)
  ids, mask = hf_models.padded_batch(rng, 300, [9, 6], 9, low=5)
  ids[0, 4], ids[1, 1] = -200, -200
  pixels = rng.normal(size=(2, 24, 24, 3)).astype(np.float32)
  torch_pixels = torch.tensor(pixels.transpose(0, 3, 1, 2))
  hf_ids, hf_mask = _expanded(ids, mask, image_id, v)
  with torch.no_grad():
    want = model(input_ids=torch.tensor(hf_ids), attention_mask=torch.tensor(hf_mask),
                 pixel_values=torch_pixels).logits.numpy()
  got = np.asarray(models.build(config).apply(
      {"params": params}, jnp.asarray(ids), jnp.asarray(mask), jnp.asarray(pixels)))
  assert got.shape == want.shape
  assert np.abs(got - want)[hf_mask > 0].max() <= TOL

  prompts, prompt_mask = np.flip(ids, 1).copy(), np.flip(mask, 1).copy()
  eos = tokenizer.eos_token_id
  ours = Generator(config, max_new_tokens=NEW, eos_id=eos, pad_id=0)(
      params, prompts, prompt_mask, pixels=pixels)
  hf_prompts, hf_prompt_mask = _expanded(prompts, prompt_mask, image_id, v)
  with torch.no_grad():
    theirs = model.generate(input_ids=torch.tensor(hf_prompts),
                            attention_mask=torch.tensor(hf_prompt_mask), pixel_values=torch_pixels,
                            do_sample=False, max_new_tokens=NEW, eos_token_id=eos,
                            pad_token_id=0).numpy()[:, hf_prompts.shape[1]:]
  np.testing.assert_array_equal(ours, np.pad(theirs, ((0, 0), (0, NEW - theirs.shape[1]))))


def test_llava_processor_feeds_as_we_do(llava):
  config, _, exported, _ = llava
  processor = transformers.AutoProcessor.from_pretrained(exported)
  assert type(processor).__name__ == "LlavaProcessor"
  image = user_folders.noise_image((40, 28), seed=3)
  messages = [user_folders.user_turn("What colour is the car?")]
  text = processor.apply_chat_template(messages, add_generation_prompt=True)
  inputs = processor(images=image, text=text, return_tensors="np")
  image_id = transformers.AutoConfig.from_pretrained(exported).image_token_index
  assert (inputs["input_ids"] == image_id).sum() == vision_lib.grid_size(config.vision) ** 2
  ours = preprocess_image(image, kind="clip", image_size=24, mean=user_folders.OWN_MEAN,
                          std=user_folders.OWN_STD)
  np.testing.assert_allclose(inputs["pixel_values"][0].transpose(1, 2, 0), ours, atol=1e-5)


# --- LLaVA-QueCC ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def quecc(tmp_path_factory):
  """A LLaVA-QueCC trained here (6 x 6 grid to 4 tokens: kernel 3), exported."""
  root = tmp_path_factory.mktemp("quecc")
  tokenizer = user_folders.byte_level_tokenizer()
  config = vlm_config("quecc", user_folders.padded_vocab(tokenizer), budget=4)
  params = random_params(config, seed=2)
  ckpt = save_model(root / "ckpt", config, params, tokenizer, template="chatml",
                    image_token="<image>", image_preprocess="clip", aspect="pad")
  export.to_hf(ckpt, str(root / "hf"))
  return config, params, str(root / "hf")


def test_quecc_round_trip_bit_for_bit(quecc):
  config, params, exported = quecc
  got_config, got = from_hf(exported, kv_layers=KV_LAYERS)
  assert architecture(got_config) == architecture(config)
  assert_same_params(got, params)
  assert (got_config.processor.aspect, got_config.processor.template) == ("pad", "chatml")


def test_quecc_config_as_the_papers_code_reads_it(quecc):
  config, params, exported = quecc
  with open(os.path.join(exported, "config.json")) as f:
    hf = json.load(f)
  tower = os.path.join(os.path.abspath(exported), "vision_tower")
  assert hf["architectures"] == ["LlavaQwenForCausalLM"] and hf["model_type"] == "llava_qwen"
  assert {k: v for k, v in hf.items() if k.startswith(("mm_", "image_"))} == {
      "mm_vision_tower": tower, "mm_vision_select_layer": -2,
      "mm_vision_select_feature": "patch", "mm_hidden_size": 32,
      "mm_projector_type": "mlp2x_gelu", "mm_patch_merge_type": "flat",
      "mm_use_im_start_end": False, "mm_use_im_patch_token": False, "image_aspect_ratio": "pad",
      "mm_vision_token_compression_type": "quecc", "mm_vision_output_token_count": 36,
      "mm_vision_output_text_embedding_size": 64, "mm_vision_output_combined_token_count": None,
      "mm_vision_token_compression_kernel_size": 3, "mm_vision_token_compression_stride": 3}
  # The paper's CLIPVisionTower: CLIPVisionModel and CLIPImageProcessor from mm_vision_tower.
  clip, info = transformers.CLIPVisionModel.from_pretrained(tower, output_loading_info=True)
  assert not any(info.values())
  tower_config, tower_params = from_hf(tower)
  assert tower_config.vision.to_dict() == config.vision.to_dict()
  assert_same_params(tower_params, params["vision"])
  image_processor = transformers.CLIPImageProcessor.from_pretrained(tower)
  assert image_processor.crop_size == {"height": 24, "width": 24}
  with safe_open(os.path.join(exported, "model.safetensors"), "np") as f:
    names = set(f.keys())
  assert {n.split(".")[2] for n in names if n.startswith("model.mm_projector.")} == {"0", "1", "3"}
  assert not any("vision" in n for n in names)


def test_quecc_tensors_load_into_the_papers_quecc(quecc):
  """mm_projector.0 into a PyTorch QueCC built as the paper's code builds it from the config."""
  config, params, exported = quecc
  assert_papers_quecc_reproduces(config.compressor, params["compressor"], exported)


def assert_papers_quecc_reproduces(compressor_config, compressor_params, exported):
  """The export's mm_projector.0, in a PyTorch QueCC built as the paper's code builds it
  from the export's config, gives our compressor's output within 1e-5."""
  with open(os.path.join(exported, "config.json")) as f:
    hf = json.load(f)
  prefix = "model.mm_projector.0."
  with safe_open(os.path.join(exported, "model.safetensors"), "pt") as f:
    state = {n[len(prefix):]: f.get_tensor(n) for n in f.keys() if n.startswith(prefix)}
  d, kernel = hf["mm_hidden_size"], hf["mm_vision_token_compression_kernel_size"]
  g = int(hf["mm_vision_output_token_count"] ** 0.5)
  torch_quecc = TorchQueCC(d, d * len(KV_LAYERS), hf["mm_vision_output_text_embedding_size"], g,
                           kernel, heads=8).eval()
  torch_quecc.load_state_dict(state, strict=True)
  rng = np.random.default_rng(4)
  x = rng.normal(size=(2, g, g, d)).astype(np.float32)
  multi = rng.normal(size=(2, g, g, d * len(KV_LAYERS))).astype(np.float32)
  text = rng.normal(size=(2, 64)).astype(np.float32)
  ours = compressors.build(compressor_config).apply({"params": compressor_params}, x, multi, text)
  with torch.no_grad():
    theirs = torch_quecc(torch.tensor(x.reshape(2, g * g, d)),
                         torch.tensor(multi.reshape(2, g * g, -1)), torch.tensor(text)).numpy()
  assert theirs.shape == (2, compressor_config.budget, d)
  np.testing.assert_allclose(np.asarray(ours), theirs, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def multi_quecc(tmp_path_factory):
  """A multi-budget LLaVA-QueCC (budgets 1, 4, 16 on the 6 x 6 grid: base kernel 6), saved."""
  root = tmp_path_factory.mktemp("multi_quecc")
  tokenizer = user_folders.byte_level_tokenizer()
  config = vlm_config("quecc", user_folders.padded_vocab(tokenizer), budget=4,
                      budgets=(1, 4, 16))
  params = random_params(config, seed=5)
  assert params["compressor"]["q_downsample"]["kernel"].shape == (6, 6, 32)
  ckpt = save_model(root / "ckpt", config, params, tokenizer, template="chatml",
                    image_token="<image>", image_preprocess="clip", aspect="pad")
  return config, params, ckpt, root


@pytest.mark.parametrize("budget", [1, 4])
def test_multi_budget_quecc_exports_the_single_budget_model(multi_quecc, budget):
  """At --budget V: the paper's QueCC gives ours at V; read back, the single-budget model at
  V, its kernel the base one resized to V's region side."""
  config, params, ckpt, root = multi_quecc
  exported = str(root / f"hf{budget}")
  export.to_hf(ckpt, exported, budget=budget)
  at_v = multi_budget.at_budget(config, budget)
  assert_papers_quecc_reproduces(at_v.compressor, params["compressor"], exported)
  got_config, got = from_hf(exported, kv_layers=KV_LAYERS)
  at_v.compressor.budgets = ()
  assert architecture(got_config) == architecture(at_v)
  side = 6 // math.isqrt(budget)
  want = flat(params)
  want[KERNEL] = np.asarray(kernel_resize.resize_kernel(want[KERNEL], (side, side)))
  assert_same_params(got, flax.traverse_util.unflatten_dict(want))


def test_multi_budget_quecc_exports_one_of_its_budgets(multi_quecc, tmp_path):
  _, _, ckpt, _ = multi_quecc
  for budget in (None, "all", 9):
    with pytest.raises(errors.BadValueError, match=(
        "serves budgets 1, 4, 16, and the paper's code holds one kernel per model: export "
        "one with --budget V")):
      export.to_hf(ckpt, str(tmp_path / f"hf{budget}"), budget=budget)
  with pytest.raises(errors.BadValueError, match="adaptive regions.*strided conv"):
    export.to_hf(ckpt, str(tmp_path / "hf16"), budget=16)  # 6 x 6 -> 4 x 4


# --- files: shards, dtype, training runs ---------------------------------------------


def test_sharded_bfloat16(llm, tmp_path):
  config, params, ckpt, _, _ = llm
  dst = tmp_path / "hf"
  written = export.to_hf(ckpt, str(dst), dtype="bfloat16", max_shard_bytes=40_000)
  with open(dst / "model.safetensors.index.json") as f:
    index = json.load(f)
  shards = sorted(set(index["weight_map"].values()))
  assert len(shards) > 2 and set(shards) <= set(written[""])
  assert shards[-1] == f"model-{len(shards):05d}-of-{len(shards):05d}.safetensors"
  sizes = []
  for shard in shards:
    with safe_open(dst / shard, "pt") as f:
      tensors = [f.get_tensor(n) for n in f.keys()]
    assert {t.dtype for t in tensors} == {torch.bfloat16}
    sizes.append(sum(t.numel() * 2 for t in tensors))
    assert sizes[-1] <= 40_000 or len(tensors) == 1
  assert index["metadata"]["total_size"] == sum(sizes) == \
      sum(x.size * 2 for x in flat(params).values())
  _, got = from_hf(str(dst))
  assert_same_params(got, params, lambda x: x.astype(ml_dtypes.bfloat16).astype(np.float32))
  model = transformers.AutoModelForCausalLM.from_pretrained(str(dst))
  assert model.dtype == torch.bfloat16


def test_training_run_at_a_step(llm, tmp_path):
  config, params, _, _, _ = llm
  run = tmp_path / "run"
  run.mkdir()
  (run / "config.json").write_text(json.dumps({"model": json.loads(config.to_json())}))
  checkpointer = Checkpointer(run / "checkpoints", every=1, keep=None, async_save=False)
  for step in (1, 2):
    state = TrainState(step=jnp.int32(step), params=_tree(params, lambda x: jnp.asarray(x * step)),
                       opt_state={"count": jnp.zeros(())}, rng=jnp.zeros(2, jnp.uint32))
    checkpointer.save(step, state, {})
  checkpointer.close()
  for spec, step in ((f"{run}@1", 1), (str(run), 2)):
    export.to_hf(spec, str(tmp_path / f"hf{step}"))
    _, got = from_hf(str(tmp_path / f"hf{step}"))
    assert_same_params(got, _tree(params, lambda x: np.asarray(x * step)))


def _tree(params, fn):
  return flax.traverse_util.unflatten_dict({p: fn(v) for p, v in flat(params).items()})


# --- memory --------------------------------------------------------------------------

PEAK_SCRIPT = """
import sys
from vlm_jax import export

def kib(key):
  with open("/proc/self/status") as f:
    return next(int(line.split()[1]) for line in f if line.startswith(key))

export.to_hf(sys.argv[1], sys.argv[2])  # imports, compiles and caches of a first export
with open("/proc/self/clear_refs", "w") as f:
  f.write("5")  # resets the peak resident size
start = kib("VmRSS")
export.to_hf(sys.argv[3], sys.argv[4])
print((kib("VmHWM") - start) * 1024)
"""


def test_streamed_export_stays_under_a_memory_cap(tmp_path):
  """An LLM of 58 MB exports with less than half of it resident at any time: the peak
  resident size of the export (after a first, tiny one in the same process) stays under
  the cap. glibc keeps allocations of 128 KiB and more out of its heap
  (MALLOC_MMAP_THRESHOLD_), so memory freed is memory returned and the peak is what the
  export held."""
  if not os.access("/proc/self/clear_refs", os.W_OK):
    pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak resident size")
  cap = 28 * 2**20
  def llm_of(num_layers, vocab_size):
    cfg = llm_config("qwen2", vocab_size, tie_embeddings=False)
    cfg.update(hidden_size=256, intermediate_size=256, num_layers=num_layers, num_heads=4,
               num_kv_heads=4, head_dim=64)
    config = hf_config.model_config("llm", llm=cfg)
    return config, random_params(config)
  small, small_params = llm_of(2, 64)
  big, big_params = llm_of(24, 8192)
  params_bytes = sum(x.nbytes for x in flat(big_params).values())
  assert params_bytes > 2 * cap
  save_model(tmp_path / "small", small, small_params)
  save_model(tmp_path / "big", big, big_params)
  env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", JAX_PLATFORMS="cpu")
  out = subprocess.run(
      [sys.executable, "-c", PEAK_SCRIPT, str(tmp_path / "small"), str(tmp_path / "small_hf"),
       str(tmp_path / "big"), str(tmp_path / "big_hf")],
      env=env, capture_output=True, text=True, check=True)
  peak = int(out.stdout.split()[-1])
  assert peak < cap, f"peak {peak / 2**20:.1f} MiB over the {cap / 2**20:.0f} MiB cap"
  with safe_open(tmp_path / "big_hf" / "model.safetensors", "np") as f:
    np.testing.assert_array_equal(f.get_tensor("model.layers.23.mlp.down_proj.weight"),
                                  big_params["layers"]["mlp"]["down_proj"]["kernel"][23].T)


# --- what the formats cannot hold ----------------------------------------------------


def _saved_vlm(path, compressor, vision=None, **fields):
  config = vlm_config(compressor, 128, vision=vision, **fields)
  return save_model(path, config, random_params(config))


@pytest.mark.parametrize("compressor", ["avgpool", "resampler"])
def test_compressor_without_hf_class_is_named(tmp_path, compressor):
  ckpt = _saved_vlm(tmp_path / "ckpt", compressor, budget=4)
  with pytest.raises(errors.BadValueError, match=(
      f"compressor '{compressor}' has no Hugging Face implementation: --format hf takes "
      "identity .* and quecc .*vlm-jax checkpoint format")):
    export.to_hf(ckpt, str(tmp_path / "hf"))
  assert not os.path.exists(tmp_path / "hf" / "config.json")


def test_what_the_papers_quecc_cannot_express(tmp_path):
  ckpt = _saved_vlm(tmp_path / "k3", "quecc", budget=4)
  for budget in (9, "all"):
    with pytest.raises(errors.BadValueError, match="holds one kernel, for budget 4.*multi-budget"):
      export.to_hf(ckpt, str(tmp_path / f"hf{budget}"), budget=budget)
  adaptive = _saved_vlm(tmp_path / "adaptive", "quecc", budget=16)  # 6 x 6 -> 4 x 4
  with pytest.raises(errors.BadValueError, match="adaptive regions.*strided conv"):
    export.to_hf(adaptive, str(tmp_path / "hf_adaptive"))
  siglip = vision_lib.default_config()
  siglip.update(image_size=24, patch_size=4)
  tower = _saved_vlm(tmp_path / "siglip", "quecc", vision=siglip, budget=4)
  with pytest.raises(errors.BadValueError, match="CLIP tower.*siglip"):
    export.to_hf(tower, str(tmp_path / "hf_siglip"))


def test_llava_needs_the_image_token_in_the_vocabulary(tmp_path):
  tokenizer = user_folders.qwen_tokenizer()  # no <image>
  config = vlm_config("identity", user_folders.padded_vocab(tokenizer))
  ckpt = save_model(tmp_path / "ckpt", config, random_params(config), tokenizer,
                    image_token="<image>")
  with pytest.raises(errors.BadValueError, match=r"has no '<image>' within its \d+ embedding rows"):
    export.to_hf(ckpt, str(tmp_path / "hf"))


def test_cli_export_and_its_errors(llm, tmp_path, capsys):
  _, params, ckpt, _, _ = llm
  assert cli.main(["export", ckpt, str(tmp_path / "hf"), "--format", "hf",
                   "--max-shard-size", "50KB"]) == 0
  assert "model.safetensors.index.json" in capsys.readouterr().out
  _, got = from_hf(str(tmp_path / "hf"))
  assert_same_params(got, params)
  for argv, message in (
      ([ckpt, str(tmp_path / "hf")], "is not an empty folder: export into a new one"),
      ([ckpt, str(tmp_path / "hf2"), "--budget", "4"], "choose what a QueCC export writes"),
      ([f"{ckpt}@3", str(tmp_path / "hf3")], "is not one")):
    assert cli.main(["export", *argv]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("vlm-jax export: error: ") and message in line
