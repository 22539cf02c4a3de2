"""The paper's grid: Qwen1.5 LLMs x visual-token budgets, QueCC, LLaVA-1.5's two stages.

`paper.py:llm=qwen1_5_7b,budget=16,stage=1`, then
`paper.py:llm=qwen1_5_7b,budget=16,stage=2,stage1=WORKDIR_OF_STAGE_1`.

llm: qwen1_5_0_5b | qwen1_5_1_8b | qwen1_5_4b | qwen1_5_7b | qwen1_5_14b
budget: visual tokens V, one of BUDGETS (576: CLIP-L/336's whole 24x24 grid)
vision: clip_vit_l_14_336 (the paper's) | siglip_so400m_14_384
compressor: quecc (the paper's) or a baseline
stage 1, alignment: LLaVA-Pretrain-558k captions, compressor + projector at lr
  1e-3, batch 256; the LLM and the tower start from converted checkpoints.
stage 2, instruction tuning: llava_v1_5_mix665k conversations, compressor,
  projector and LLM at lr 2e-5, batch 128; starts from stage 1's workdir.
Both: 1 epoch, warmup 3 %, cosine, no weight decay, vision tower frozen.
checkpoints: folder of `vlm-jax convert` outputs named like the presets
  (checkpoints/qwen1_5_7b, checkpoints/clip_vit_l_14_336); the LLM's carries the
  tokenizer (checkpoints/qwen1_5_7b/tokenizer).
data_dir: LLaVA's data folder: LLaVA-Pretrain/{blip_laion_cc_sbu_558k.json,images}
  and llava_v1_5_mix665k.json beside coco/, gqa/, ocr_vqa/, textvqa/, vg/.
"""
from vlm_jax import train
from vlm_jax.configs import parse_arg, preset

LLMS = ("qwen1_5_0_5b", "qwen1_5_1_8b", "qwen1_5_4b", "qwen1_5_7b", "qwen1_5_14b")
BUDGETS = (1, 4, 16, 36, 64, 144, 576)
VISIONS = ("clip_vit_l_14_336", "siglip_so400m_14_384")
STAGES = {  # learning rate per group (0: frozen), global batch, template, image aspect
    1: dict(lr=dict(vision=0.0, compressor=1e-3, projector=1e-3, llm=0.0), batch=256,
            template="plain", aspect="square"),
    2: dict(lr=dict(vision=0.0, compressor=2e-5, projector=2e-5, llm=2e-5), batch=128,
            template="chatml", aspect="pad"),
}


def get_config(arg=None):
  arg = parse_arg(arg, llm="qwen1_5_7b", budget=16, vision="clip_vit_l_14_336",
                  compressor="quecc", stage=1, stage1="", checkpoints="checkpoints",
                  data_dir="data/llava")
  for name, value, known in (("llm", arg.llm, LLMS), ("budget", arg.budget, BUDGETS),
                             ("vision", arg.vision, VISIONS), ("stage", arg.stage, STAGES)):
    if value not in known:
      raise ValueError(f"{name} must be one of {list(known)}, got {value!r}")
  if arg.stage == 2 and not arg.stage1:
    raise ValueError("stage=2 starts from a stage-1 run: give stage1=WORKDIR")
  stage = STAGES[arg.stage]

  config = train.default_config()
  config.model = preset(f"vlm:llm={arg.llm},vision={arg.vision},compressor={arg.compressor},"
                        f"budget={arg.budget},dtype=bfloat16")
  config.model.llm.remat = "full"
  if arg.stage == 1:
    json_path = f"{arg.data_dir}/LLaVA-Pretrain/blip_laion_cc_sbu_558k.json"
    image_dir = f"{arg.data_dir}/LLaVA-Pretrain/images"
    config.init_llm_from = f"{arg.checkpoints}/{arg.llm}"
    config.init_vision_from = f"{arg.checkpoints}/{arg.vision}"
  else:
    json_path, image_dir = f"{arg.data_dir}/llava_v1_5_mix665k.json", arg.data_dir
    config.init_from = arg.stage1
  config.data.update(source="llava_json", json_path=json_path, image_dir=image_dir,
                     tokenizer=f"{arg.checkpoints}/{arg.llm}/tokenizer", template=stage["template"],
                     aspect=stage["aspect"], max_length=2048, read_threads=16)
  config.update(batch_size=stage["batch"], num_epochs=1.0, log_every=10)
  config.optim.update(warmup_fraction=0.03, weight_decay=0.0, clip_norm=1.0)
  config.optim.learning_rates.update(stage["lr"])
  config.mesh.update(data=1, fsdp=-1, tensor=1)
  config.checkpoint.update(every=1000, keep=2)
  return config
