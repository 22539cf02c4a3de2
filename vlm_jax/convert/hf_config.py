"""Hugging Face config.json -> our model configs (transformers 4.x and 5.x layouts)."""
import ml_collections

from vlm_jax.models import llm, vision


def _rope(hf):
  """(theta, scaling) from 4.x top-level rope_theta/rope_scaling or 5.x rope_parameters."""
  params = dict(hf.get("rope_parameters") or {})
  scaling = dict(hf.get("rope_scaling") or {})
  theta = params.pop("rope_theta", hf.get("rope_theta", scaling.pop("rope_theta", 10000.0)))
  scaling.update(params)
  kind = scaling.pop("rope_type", scaling.pop("type", "default"))
  return float(theta), (dict(scaling, rope_type=kind) if kind != "default" else None)


def llm_config(hf):
  """Qwen2 / Llama config dict -> our LLM config."""
  model_type = hf.get("model_type")
  if model_type not in ("qwen2", "llama"):
    raise ValueError(f"unsupported LLM model_type {model_type!r} (qwen2, llama)")
  if model_type == "llama" and (hf.get("attention_bias") or hf.get("mlp_bias")):
    raise ValueError("unsupported Llama options: attention_bias / mlp_bias")
  if hf.get("use_sliding_window"):
    raise ValueError("unsupported option use_sliding_window=True")
  heads = hf["num_attention_heads"]
  theta, scaling = _rope(hf)
  cfg = llm.default_config()
  cfg.update(
      family=model_type, vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"],
      intermediate_size=hf["intermediate_size"], num_layers=hf["num_hidden_layers"],
      num_heads=heads, num_kv_heads=hf.get("num_key_value_heads") or heads,
      head_dim=hf.get("head_dim") or hf["hidden_size"] // heads, rope_theta=theta,
      rms_norm_eps=hf.get("rms_norm_eps", 1e-6), qkv_bias=model_type == "qwen2",
      tie_embeddings=bool(hf.get("tie_word_embeddings", False)),  # transformers' default
      max_position_embeddings=hf.get("max_position_embeddings", 4096))
  cfg.rope_scaling = scaling
  return cfg


def vision_config(hf):
  """siglip_vision_model / clip_vision_model config dict -> our vision config."""
  model_type = hf.get("model_type")
  family = {"siglip_vision_model": "siglip", "clip_vision_model": "clip"}.get(model_type)
  if family is None:
    raise ValueError(f"unsupported vision model_type {model_type!r}")
  cfg = vision.default_config()
  cfg.update(
      family=family, image_size=hf["image_size"], patch_size=hf["patch_size"],
      num_channels=hf.get("num_channels", 3), hidden_size=hf["hidden_size"],
      intermediate_size=hf["intermediate_size"], num_layers=hf["num_hidden_layers"],
      num_heads=hf["num_attention_heads"],
      layer_norm_eps=hf.get("layer_norm_eps", 1e-6 if family == "siglip" else 1e-5),
      hidden_act=hf.get("hidden_act", "gelu_pytorch_tanh" if family == "siglip"
                        else "quick_gelu"))
  return cfg


def model_config(kind, dtype="float32", **parts):
  return ml_collections.ConfigDict(dict(kind=kind, dtype=dtype, **parts))


def to_hf(config):
  """Our model config -> the equivalent `transformers` model config (for the same model in PyTorch)."""
  import transformers
  if config.kind == "llm":
    return _hf_llm(config.llm, transformers)
  if config.kind == "vision":
    return _hf_vision(config.vision, transformers)
  if config.kind == "vlm" and config.compressor.name == "identity":
    clip = config.vision.family == "clip"
    return transformers.LlavaConfig(
        vision_config=_hf_vision(config.vision, transformers).to_dict(),
        text_config=_hf_llm(config.llm, transformers).to_dict(),
        vision_feature_layer=config.compressor.select_layer,
        vision_feature_select_strategy="default" if clip else "full",
        image_token_index=config.image_token_id, projector_hidden_act="gelu")
  raise ValueError(f"no transformers equivalent for a {config.kind} with compressor "
                   f"{config.get('compressor', {}).get('name')!r}")


def _hf_llm(cfg, transformers):
  config_class = {"qwen2": transformers.Qwen2Config, "llama": transformers.LlamaConfig}
  rope = dict(cfg.rope_scaling or {"rope_type": "default"}, rope_theta=cfg.rope_theta)
  return config_class[cfg.family](
      vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size,
      intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.num_layers,
      num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
      head_dim=cfg.head_dim, rope_parameters=rope, rms_norm_eps=cfg.rms_norm_eps,
      tie_word_embeddings=cfg.tie_embeddings,
      max_position_embeddings=cfg.max_position_embeddings)


def _hf_vision(cfg, transformers):
  kwargs = dict(
      hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
      num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
      image_size=cfg.image_size, patch_size=cfg.patch_size, num_channels=cfg.num_channels,
      layer_norm_eps=cfg.layer_norm_eps, hidden_act=cfg.hidden_act)
  if cfg.family == "clip":
    return transformers.CLIPVisionConfig(**kwargs)
  # Our tower stops at the final LayerNorm: no attention-pooling head.
  return transformers.SiglipVisionConfig(vision_use_head=False, **kwargs)
