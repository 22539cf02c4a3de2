"""Name rules: our param paths -> Hugging Face tensor names, per architecture."""

def llm_rules(cfg):
  """Qwen2/Llama decoder (names relative to the `model.` of *ForCausalLM)."""
  layer = "layers.{i}."
  rules = {("embed", "embedding"): ("embed_tokens.weight", "copy"),
           ("norm", "scale"): ("norm.weight", "copy")}
  for proj in ("q_proj", "k_proj", "v_proj"):
    rules[("layers", "self_attn", proj, "kernel")] = (f"{layer}self_attn.{proj}.weight", "linear")
    if cfg.qkv_bias:
      rules[("layers", "self_attn", proj, "bias")] = (f"{layer}self_attn.{proj}.bias", "reshape")
  rules[("layers", "self_attn", "o_proj", "kernel")] = (f"{layer}self_attn.o_proj.weight",
                                                         "linear_from_heads")
  for proj in ("gate_proj", "up_proj", "down_proj"):
    rules[("layers", "mlp", proj, "kernel")] = (f"{layer}mlp.{proj}.weight", "linear")
  for norm in ("input_layernorm", "post_attention_layernorm"):
    rules[("layers", norm, "scale")] = (f"{layer}{norm}.weight", "copy")
  return rules

def lm_head_rules(cfg):
  return {} if cfg.tie_embeddings else {("lm_head", "kernel"): ("lm_head.weight", "linear")}

def _layer_norm(path, name):
  return {path + ("scale",): (f"{name}.weight", "copy"),
          path + ("bias",): (f"{name}.bias", "copy")}

def _dense(path, name, kind="linear", bias_kind="reshape"):
  return {path + ("kernel",): (f"{name}.weight", kind),
          path + ("bias",): (f"{name}.bias", bias_kind)}

def vision_rules(cfg):
  """SigLIP/CLIP tower (names relative to `vision_model.`)."""
  clip = cfg.family == "clip"
  rules = {("patch_embedding", "kernel"): ("embeddings.patch_embedding.weight", "conv"),
           ("position_embedding",): ("embeddings.position_embedding.weight", "copy")}
  if clip:
    rules[("class_embedding",)] = ("embeddings.class_embedding", "copy")
    rules.update(_layer_norm(("pre_layrnorm",), "pre_layrnorm"))
  else:
    rules[("patch_embedding", "bias")] = ("embeddings.patch_embedding.bias", "copy")
  rules.update(_layer_norm(("post_layernorm",), "post_layernorm"))
  layer = "encoder.layers.{i}."
  for proj in ("q_proj", "k_proj", "v_proj"):
    rules.update(_dense(("layers", proj), f"{layer}self_attn.{proj}"))
  rules.update(_dense(("layers", "out_proj"), f"{layer}self_attn.out_proj", "linear_from_heads"))
  for fc in ("fc1", "fc2"):
    rules.update(_dense(("layers", fc), f"{layer}mlp.{fc}", bias_kind="copy"))
  for norm in ("layer_norm1", "layer_norm2"):
    rules.update(_layer_norm(("layers", norm), f"{layer}{norm}"))
  return rules


def projector_rules(first="linear_1", second="linear_2"):
  """LLaVA mlp2x_gelu (names relative to the projector module)."""
  return {**_dense(("linear_1",), first, bias_kind="copy"),
          **_dense(("linear_2",), second, bias_kind="copy")}


def quecc_rules():
  """The paper's QueCC (names relative to `mm_projector.0.`; index 1 of a stack is its GELU)."""
  rules = {**_dense(("text_projection",), "text_projection.0", bias_kind="copy"),
           **_layer_norm(("text_norm",), "text_projection.1"),
           ("q_downsample", "kernel"): ("q_downsample.weight", "depthwise_conv"),
           ("q_downsample", "bias"): ("q_downsample.bias", "copy")}
  for stack in ("q_proj", "k_proj", "v_proj"):
    rules.update(_dense((stack, "dense_in"), f"{stack}.0", bias_kind="copy"))
    rules.update(_dense((stack, "dense_out"), f"{stack}.2", bias_kind="copy"))
    rules.update(_layer_norm((stack, "norm"), f"{stack}.3"))
  for i, part in enumerate(("query", "key", "value")):
    rules[("region_attention", part, "kernel")] = ("clip_attn.in_proj_weight", "linear", (i, 3))
    rules[("region_attention", part, "bias")] = ("clip_attn.in_proj_bias", "reshape", (i, 3))
  rules.update(_dense(("region_attention", "out"), "clip_attn.out_proj", "linear_from_heads"))
  return rules
