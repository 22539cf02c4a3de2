"""Cached batched generation: token-for-token parity with `transformers` generate, the
fixed-shape decode step, EOS handling and sampling."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

import hf_models
from vlm_jax import configs, convert, models
from vlm_jax.generate import Generator, generate, next_token

NEW = 20
PAD = 0
EOS = 1
IMAGE = 127
V = 16  # LLaVA test tower: (32 / 8) ** 2 visual tokens


def left_padded(rng, lengths, total, low=2, high=100):
  """Left-padded random ids (B, total) in [low, high) and their 0/1 mask."""
  ids = np.full((len(lengths), total), PAD, np.int64)
  mask = np.zeros_like(ids)
  for b, n in enumerate(lengths):
    ids[b, total - n:] = rng.integers(low, high, n)
    mask[b, total - n:] = 1
  return ids, mask


def hf_generate(model, ids, mask, eos_id, **extra):
  """transformers greedy generation -> the new tokens (B, NEW), PAD after an early stop."""
  with torch.no_grad():
    out = model.generate(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                         do_sample=False, max_new_tokens=NEW, eos_token_id=eos_id,
                         pad_token_id=PAD, **extra).numpy()[:, ids.shape[1]:]
  return np.pad(out, ((0, 0), (0, NEW - out.shape[1])), constant_values=PAD)


def _convert(model, path):
  config, params = convert.from_hf(hf_models.save(hf_models.randomize(model), path))
  return model, config, params


@pytest.fixture(scope="module")
def qwen2(tmp_path_factory):
  return _convert(transformers.Qwen2ForCausalLM(hf_models.qwen2_config()),
                  tmp_path_factory.mktemp("qwen2"))


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
  return _convert(transformers.LlamaForCausalLM(transformers.LlamaConfig(
      vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
      num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=256,
      tie_word_embeddings=False, rope_theta=500000.0,
      rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                        high_freq_factor=4.0, original_max_position_embeddings=16))),
      tmp_path_factory.mktemp("llama"))


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
  config = transformers.LlavaConfig(
      vision_config=transformers.SiglipVisionConfig(
          hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
          image_size=32, patch_size=8).to_dict() | {"model_type": "siglip_vision_model"},
      text_config=hf_models.qwen2_config().to_dict(), image_token_index=IMAGE,
      vision_feature_select_strategy="full", vision_feature_layer=-2,
      projector_hidden_act="gelu")
  return _convert(transformers.LlavaForConditionalGeneration(config),
                  tmp_path_factory.mktemp("llava"))


@pytest.fixture(scope="module")
def prompts():
  return left_padded(np.random.default_rng(0), [11, 6, 3], 11)


@pytest.fixture(scope="module")
def qwen2_greedy(qwen2, prompts):
  """A Generator with prompts bucketed to 16 (extra left padding) and its output."""
  _, config, params = qwen2
  generator = Generator(config, max_new_tokens=NEW, eos_id=EOS, pad_id=PAD,
                        prompt_buckets=(16,))
  return generator, generator(params, *prompts)


def _assert_some_sequence_runs_full(tokens):
  assert (tokens != EOS).all(axis=1).any(), "every sequence hit EOS early: pick another EOS id"


def test_qwen2_greedy_matches_transformers(qwen2, prompts, qwen2_greedy):
  want = hf_generate(qwen2[0], *prompts, EOS)
  _assert_some_sequence_runs_full(want)
  np.testing.assert_array_equal(qwen2_greedy[1], want)


def test_llama_greedy_matches_transformers(llama, prompts):
  model, config, params = llama
  want = hf_generate(model, *prompts, [EOS, 2])
  _assert_some_sequence_runs_full(want)
  got = generate(config, params, *prompts, max_new_tokens=NEW, eos_id=[EOS, 2], pad_id=PAD)
  np.testing.assert_array_equal(got, want)


def test_eos_stops_a_sequence_and_pads_the_rest(qwen2, prompts):
  model, config, params = qwen2
  free_run = generate(config, params, *prompts, max_new_tokens=NEW, pad_id=PAD)
  # EOS: a token some sequence first emits at step >= 3.
  eos = next(int(t) for row in free_run for i, t in enumerate(row) if i >= 3 and t not in row[:i])
  want = np.full_like(free_run, PAD)
  for row, free in zip(want, free_run):
    stop = NEW if eos not in free else list(free).index(eos) + 1
    row[:stop] = free[:stop]
  stops = [eos in free for free in free_run]
  assert any(stops) and not all(stops)
  got = generate(config, params, *prompts, max_new_tokens=NEW, eos_id=eos, pad_id=PAD)
  np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(got, hf_generate(model, *prompts, eos))


def test_decode_compiles_once_per_shape(qwen2, qwen2_greedy):
  generator, _ = qwen2_greedy
  model, _, params = qwen2
  other = left_padded(np.random.default_rng(1), [5, 9, 14], 14)  # same 16 bucket
  np.testing.assert_array_equal(generator(params, *other), hf_generate(model, *other, EOS))
  assert generator.prefill._cache_size() == 1
  assert generator.decode._cache_size() == 1


def test_single_steps_reproduce_the_decode_loop(qwen2, prompts, qwen2_greedy):
  generator, want = qwen2_greedy
  _, _, params = qwen2
  state = generator.prefill(params, generator.prepare(*prompts), jax.random.PRNGKey(0))
  for _ in range(NEW - 1):
    state = generator.step(params, state)
  assert int(state.step) == NEW
  np.testing.assert_array_equal(np.asarray(state.tokens), want)
  assert generator.step._cache_size() == 1


def test_llava_greedy_left_padded_matches_transformers(llava):
  model, config, params = llava
  rng = np.random.default_rng(2)
  ids, mask = left_padded(rng, [9, 6], 9)
  ids[0, 4], ids[1, 5] = IMAGE, IMAGE  # one placeholder per prompt, different places
  pixels = rng.normal(size=(2, 32, 32, 3)).astype(np.float32)
  # transformers expects the placeholder repeated once per visual token.
  repeats = np.where(ids == IMAGE, V, 1)
  hf_ids = np.stack([np.repeat(r, n) for r, n in zip(ids, repeats)])
  hf_mask = np.stack([np.repeat(m, n) for m, n in zip(mask, repeats)])
  want = hf_generate(model, hf_ids, hf_mask, EOS,
                     pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2)))
  _assert_some_sequence_runs_full(want)
  got = generate(config, params, ids, mask, pixels=pixels, max_new_tokens=NEW, eos_id=EOS,
                 pad_id=PAD)
  np.testing.assert_array_equal(got, want)


def test_quecc_vlm_matches_full_recompute():
  """Cached generation equals re-running the uncached model on the growing sequence."""
  config = configs.preset("vlm:compressor=quecc,budget=4")
  params = jax.jit(lambda rng: models.init(config, rng))(jax.random.PRNGKey(3))
  rng = np.random.default_rng(3)
  ids, mask = left_padded(rng, [7, 4], 7, high=config.llm.vocab_size)
  ids[0, 2], ids[1, 4] = config.image_token_id, config.image_token_id
  pixels = rng.normal(size=(2, 64, 64, 3)).astype(np.float32)
  question_ids, _ = left_padded(rng, [5, 5], 5, high=config.llm.vocab_size)
  question_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
  new = 6
  got = generate(config, params, ids, mask, pixels=pixels, question_ids=question_ids,
                 question_mask=question_mask, max_new_tokens=new, pad_id=PAD)
  # Tokens appended on the right; causal attention keeps later slots from mattering.
  forward = jax.jit(lambda ids, mask: models.build(config).apply(
      {"params": params}, ids, mask, pixels, question_ids, question_mask))
  prefill_length = ids.shape[1] - 1 + 4
  buffer = np.pad(ids, ((0, 0), (0, new)), constant_values=PAD)
  buffer_mask = np.pad(mask, ((0, 0), (0, new)))
  for i in range(new):
    logits = forward(buffer, buffer_mask)
    buffer[:, ids.shape[1] + i] = np.argmax(logits[:, prefill_length + i - 1], axis=-1)
    buffer_mask[:, ids.shape[1] + i] = 1
  np.testing.assert_array_equal(got, buffer[:, ids.shape[1]:])


def test_sampling_is_reproducible_and_tiny_top_p_is_greedy(qwen2, prompts, qwen2_greedy):
  _, config, params = qwen2
  sampler = Generator(config, max_new_tokens=NEW, pad_id=PAD, temperature=2.0)
  first = sampler(params, *prompts, rng=jax.random.PRNGKey(7))
  np.testing.assert_array_equal(sampler(params, *prompts, rng=jax.random.PRNGKey(7)), first)
  assert (sampler(params, *prompts, rng=jax.random.PRNGKey(8)) != first).any()
  nucleus_of_one = generate(config, params, *prompts, max_new_tokens=NEW, eos_id=EOS,
                            pad_id=PAD, temperature=1.0, top_p=1e-6, rng=jax.random.PRNGKey(7))
  np.testing.assert_array_equal(nucleus_of_one, qwen2_greedy[1])


def test_next_token_samples_the_renormalized_nucleus():
  probs = np.array([0.5, 0.3, 0.15, 0.05])
  logits = jnp.log(jnp.asarray(probs))[None]
  keys = jax.random.split(jax.random.PRNGKey(0), 20000)
  draw = jax.jit(jax.vmap(lambda k, t, p: next_token(logits, k, t, p)[0],
                          in_axes=(0, None, None)), static_argnums=(1, 2))
  # top_p 0.7: 0.5 alone falls short, 0.5 + 0.3 reaches it -> {0: 0.625, 1: 0.375}.
  frequencies = np.bincount(np.asarray(draw(keys, 1.0, 0.7)), minlength=4) / len(keys)
  np.testing.assert_allclose(frequencies, [0.625, 0.375, 0, 0], atol=0.015)
  # Temperature 2 flattens to p ** 0.5, renormalized.
  tempered = np.sqrt(probs) / np.sqrt(probs).sum()
  frequencies = np.bincount(np.asarray(draw(keys, 2.0, 1.0)), minlength=4) / len(keys)
  np.testing.assert_allclose(frequencies, tempered, atol=0.015)


def test_bad_prompts_are_rejected(qwen2, llava):
  _, config, params = qwen2
  right_padded = (np.array([[5, 6, 0]]), np.array([[1, 1, 0]]))
  with pytest.raises(ValueError, match="left-padded"):
    generate(config, params, *right_padded, max_new_tokens=2)
  _, vlm_config, vlm_params = llava
  pixels = np.zeros((1, 32, 32, 3), np.float32)
  with pytest.raises(ValueError, match="exactly one image placeholder"):
    generate(vlm_config, vlm_params, np.array([[5, 6, 7]]), np.ones((1, 3)), pixels=pixels,
             max_new_tokens=2)
  with pytest.raises(ValueError, match="needs an rng"):
    generate(config, params, np.array([[5, 6]]), np.ones((1, 2)), max_new_tokens=2,
             temperature=1.0)
