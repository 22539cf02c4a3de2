"""Folders as a user downloads them, built small and offline, and their PyTorch references.

- `llava_hf_folder`: a llava-hf style `LlavaForConditionalGeneration` download (config,
  safetensors, a trained byte-level BPE tokenizer with a chatml chat template, the
  LlavaProcessor's preprocessor / processor / chat-template files).
- `paper_quecc_folders`: the paper's LLaVA-QueCC checkpoints (LlavaQwenForCausalLM
  config, `model.*` LLM and `model.mm_projector.{0,1,3}` tensors, a Qwen-style tokenizer
  in the checkpoint folder) and the CLIP tower folder with its preprocessor config.
- `textvqa_folder`: TextVQA in the LLaVA-1.5 evaluation layout, non-square images.
- `hf_llava_answer` / `PaperReference`: what transformers / the paper's PyTorch modules
  answer for one question (greedy).
"""
import json
import os
import types

import numpy as np
import tokenizers
import torch
import transformers
from PIL import Image
from safetensors.torch import save_file
from tokenizers import decoders, normalizers, pre_tokenizers, processors, trainers

import hf_models
from torch_quecc import TorchQueCC
from torch_quecc import randomize as randomize_quecc
from vlm_jax import cli

IMAGE, IM_START, IM_END, EOS, PAD, BOS = (
    "<image>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<pad>", "<s>")
SHORT_ANSWER = "Answer the question using a single word or phrase."
OCR_PREFIX = "Reference OCR token:"

# The text the tokenizers learn their merges from: questions, OCR lines, the
# instruction and the chat templates' words.
CORPUS = [
    "You are a helpful assistant.", "You answer questions about small pictures.",
    SHORT_ANSWER, "What is written on the sign?", "What colour is the car?",
    "What is the brand of this camera?", "What year is shown on the coin?",
    "Which word is printed on the red box?", "How many people are in the picture?",
    "What is the name of the street?", "What is the title of the book?",
    f"{OCR_PREFIX} dakota, digital, camera", f"{OCR_PREFIX} stop, main, street",
    "The answer is red.", "The picture shows a yellow square and a blue circle.",
    "There are two dogs and three cats on the green grass.", "user", "assistant", "system",
    "Describe the image in one sentence.", "The quick brown fox jumps over the lazy dog.",
    "A small square of noise with many colours.", "Red", "Blue", "Green", "Yes", "No",
]

# chatml rendering a user turn's content list [{"type": "image"}, {"type": "text", ...}]
# as "<image>\n" + text (and plain string contents as they are); its own system line.
SYSTEM_MESSAGE = "You answer questions about small pictures."
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n" + SYSTEM_MESSAGE + "<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>\\n' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

# Qwen1.5's chat template (default system "You are a helpful assistant.").
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

# The paper's prompt for a Qwen LLM (see test_e2e_paper_quecc.py): chatml, Qwen's system line.
PAPER_QWEN_PROMPT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                     "<|im_start|>user\n<image>\n{prompt}<|im_end|>\n<|im_start|>assistant\n")


def _bpe_trainer(special_tokens, merges):
  return trainers.BpeTrainer(
      vocab_size=256 + len(special_tokens) + merges, special_tokens=special_tokens,
      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)


def byte_level_tokenizer(merges=300, bos=False):
  """A byte-level BPE trained on CORPUS, as `PreTrainedTokenizerFast`: eos `<|endoftext|>`,
  pad `<pad>`, special `<|im_start|>`, `<|im_end|>`, `<image>` and the chatml template;
  bos=True also puts `<s>` in front of every encoded text (as Llama tokenizers do)."""
  specials = [PAD, EOS, IM_START, IM_END, IMAGE] + ([BOS] if bos else [])
  tokenizer = tokenizers.Tokenizer(tokenizers.models.BPE())
  tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tokenizer.decoder = decoders.ByteLevel()
  tokenizer.train_from_iterator(CORPUS * 4, trainer=_bpe_trainer(specials, merges))
  if bos:
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, specials.index(BOS))])
  extra = dict(bos_token=BOS, add_bos_token=True) if bos else {}
  return transformers.PreTrainedTokenizerFast(
      tokenizer_object=tokenizer, eos_token=EOS, pad_token=PAD, model_max_length=2048,
      additional_special_tokens=[IM_START, IM_END, IMAGE], chat_template=CHATML_TEMPLATE,
      **extra)


def qwen_tokenizer(merges=300):
  """A Qwen2Tokenizer (Qwen's pre-tokenizer regex, NFC, byte-level) with merges trained on
  CORPUS; `<|endoftext|>` eos and pad, `<|im_start|>` / `<|im_end|>`, Qwen1.5's template."""
  specials = [EOS, IM_START, IM_END]
  tokenizer = tokenizers.Tokenizer(tokenizers.models.BPE())
  tokenizer.normalizer = normalizers.NFC()
  # Qwen's regex split, then bytes: learned from the merges Qwen2Tokenizer will apply.
  tokenizer.pre_tokenizer = transformers.Qwen2Tokenizer().backend_tokenizer.pre_tokenizer
  tokenizer.train_from_iterator(CORPUS * 4, trainer=_bpe_trainer(specials, merges))
  model = json.loads(tokenizer.to_str())["model"]
  # As Qwen's: the learned tokens first, the special tokens after them.
  learned = sorted((i, t) for t, i in model["vocab"].items() if t not in specials)
  vocab = {t: i for i, (_, t) in enumerate(learned)}
  merges_list = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
  qwen = transformers.Qwen2Tokenizer(vocab=vocab, merges=merges_list, model_max_length=32768,
                                     chat_template=QWEN_CHAT_TEMPLATE)
  qwen.add_special_tokens({"additional_special_tokens": [IM_START, IM_END]})
  return qwen


def padded_vocab(tokenizer, multiple=64):
  """The model's vocabulary size: len(tokenizer) rounded up (unused rows, as real models have)."""
  return -(-len(tokenizer) // multiple) * multiple


def _write_json(path, value):
  with open(path, "w", encoding="utf-8") as f:
    json.dump(value, f, indent=2)


def _llm_config(family, vocab_size, **overrides):
  """A 2-layer, width-64 Qwen2 or Llama config."""
  if family == "qwen2":
    return hf_models.qwen2_config(vocab_size=vocab_size, tie_word_embeddings=False, **overrides)
  return transformers.LlamaConfig(**dict(
      vocab_size=vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
      rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False) | overrides)


def clip_config():
  """CLIP tower: 24 px images, 4 px patches (a 6 x 6 grid), 3 layers of width 32."""
  return transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                                       num_attention_heads=4, image_size=24, patch_size=4)


OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
# A tower of the user's own statistics: a pipeline that ignores the processor's changes answers.
OWN_MEAN, OWN_STD = [0.6, 0.3, 0.5], [0.2, 0.35, 0.3]


def clip_image_processor(size, mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD):
  """llava-hf's CLIP preprocessing at `size` px (PIL backend where transformers has one)."""
  cls = getattr(transformers, "CLIPImageProcessorPil", transformers.CLIPImageProcessor)
  return cls(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
             do_center_crop=True, do_resize=True, resample=3, do_normalize=True,
             image_mean=mean, image_std=std)


def llava_hf_folder(path, family="qwen2", seed=0):
  """Writes a llava-hf style download to `path`. -> namespace(path, model, processor, tokenizer).

  The tokenizer puts `<s>` first for the Llama family. The model's vocabulary is the
  tokenizer's rounded up to 64; image_token_index is the id of `<image>`. The output rows
  of the tokens no answer holds (`<image>`, `<pad>`, `<|im_start|>`, `<s>`) are zero, so
  greedy decoding never picks them.
  """
  tokenizer = byte_level_tokenizer(bos=family == "llama")
  vision = clip_config()
  config = transformers.LlavaConfig(
      vision_config=vision.to_dict(),
      text_config=_llm_config(family, padded_vocab(tokenizer)).to_dict(),
      image_token_index=tokenizer.convert_tokens_to_ids(IMAGE), vision_feature_layer=-2,
      vision_feature_select_strategy="default", projector_hidden_act="gelu",
      pad_token_id=tokenizer.pad_token_id)
  model = hf_models.randomize(transformers.LlavaForConditionalGeneration(config), seed=seed)
  never_written = [t for t in (PAD, IM_START, IMAGE, BOS) if t in tokenizer.get_vocab()]
  with torch.no_grad():  # logit 0, below the best of hundreds of random ones, as trained
    model.lm_head.weight[tokenizer.convert_tokens_to_ids(never_written)] = 0  # models do
  model.save_pretrained(path, safe_serialization=True)
  processor = transformers.LlavaProcessor(
      image_processor=clip_image_processor(vision.image_size, OWN_MEAN, OWN_STD),
      tokenizer=tokenizer,
      patch_size=vision.patch_size, vision_feature_select_strategy="default",
      num_additional_image_tokens=1, chat_template=CHATML_TEMPLATE)
  processor.save_pretrained(path)
  # Hub downloads made with transformers 4.x keep the image processor's own file too.
  processor.image_processor.save_pretrained(path)
  return types.SimpleNamespace(path=str(path), family=family, model=model, processor=processor,
                               tokenizer=tokenizer)


def bigger_tokenizer(tokenizer, size, path):
  """Saves to `path` a copy of `tokenizer` grown with `<extra_i>` tokens to `size` tokens."""
  grown = transformers.AutoTokenizer.from_pretrained(_saved(tokenizer, path))
  grown.add_tokens([f"<extra_{i}>" for i in range(size - len(grown))])
  grown.save_pretrained(path)
  assert len(grown) == size
  return str(path)


def _saved(tokenizer, path):
  tokenizer.save_pretrained(path)
  return str(path)


# --- the answers transformers gives -----------------------------------------------------


def user_turn(prompt):
  """The user's message as llava-hf processors take it: the image, then the text."""
  return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}


def stop_ids(tokenizer):
  """End-of-answer ids: the tokenizer's eos and the chat template's end of turn `<|im_end|>`
  (our harness stops on both, so transformers generate is given both)."""
  return [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(IM_END)]


def hf_llava_answer(user, image, prompt, max_new_tokens):
  """transformers' greedy answer of `llava_hf_folder`'s model to `prompt` about `image`:
  the processor's chat template and preprocessing, new tokens decoded without special
  tokens, stripped. -> (answer text, new token ids)."""
  processor, tokenizer = user.processor, user.processor.tokenizer
  text = processor.apply_chat_template([user_turn(prompt)], add_generation_prompt=True)
  inputs = processor(images=image, text=text, return_tensors="pt")
  with torch.no_grad():
    out = user.model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens,
                              eos_token_id=stop_ids(tokenizer), pad_token_id=tokenizer.pad_token_id)
  new = out[0, inputs["input_ids"].shape[1]:].tolist()
  return tokenizer.decode(new, skip_special_tokens=True).strip(), new


# --- the paper's LLaVA-QueCC ------------------------------------------------------------


def paper_quecc_folders(root, kernels, kv_layers, seed=0):
  """The paper's checkpoints, one per QueCC kernel, sharing a CLIP tower and an LLM.

  Writes root/clip (CLIPVisionModel + preprocessor_config.json) and root/quecc_k{k}
  (config.json, two safetensors shards with their index, the Qwen tokenizer's files).
  -> namespace(clip_path, checkpoints={kernel: path}, clip, llm, quecc={kernel: module},
  projector={kernel: module}, image_processor, tokenizer).
  """
  clip = hf_models.randomize(transformers.CLIPVisionModel(clip_config()), seed=seed)
  clip_path = os.path.join(root, "clip")
  hf_models.save(clip, clip_path)
  image_processor = clip_image_processor(clip.config.image_size)
  image_processor.save_pretrained(clip_path)
  tokenizer = qwen_tokenizer()
  llm = hf_models.randomize(transformers.Qwen2ForCausalLM(
      _llm_config("qwen2", padded_vocab(tokenizer))), seed=seed + 1)
  d, d_text = clip.config.hidden_size, llm.config.hidden_size
  grid = clip.config.image_size // clip.config.patch_size
  parts = types.SimpleNamespace(clip_path=clip_path, checkpoints={}, clip=clip, llm=llm,
                                quecc={}, projector={}, image_processor=image_processor,
                                tokenizer=tokenizer, kv_layers=tuple(kv_layers))
  for kernel in kernels:
    quecc = TorchQueCC(d, d * len(kv_layers), d_text, grid, kernel, heads=8).eval()
    randomize_quecc(quecc, seed=seed + 10 + kernel)
    projector = torch.nn.Sequential(torch.nn.Linear(d, d_text), torch.nn.GELU(),
                                    torch.nn.Linear(d_text, d_text)).eval()
    randomize_quecc(projector, seed=seed + 20 + kernel)
    path = os.path.join(root, f"quecc_k{kernel}")
    _write_paper_checkpoint(path, llm, torch.nn.Sequential(quecc, *projector), kernel, grid, d)
    tokenizer.save_pretrained(path)
    parts.checkpoints[kernel], parts.quecc[kernel], parts.projector[kernel] = path, quecc, projector
  return parts


def _write_paper_checkpoint(path, llm, mm_projector, kernel, grid, mm_hidden):
  """config.json as the paper's LlavaQwen training writes it, and two shards + index."""
  os.makedirs(path, exist_ok=True)
  config = dict(
      llm.config.to_dict(), model_type="llava_qwen", architectures=["LlavaQwenForCausalLM"],
      mm_vision_tower="openai/clip-vit-large-patch14-336", mm_vision_select_layer=-2,
      mm_vision_select_feature="patch", mm_hidden_size=mm_hidden,
      mm_projector_type="mlp2x_gelu", mm_use_im_start_end=False, mm_use_im_patch_token=False,
      image_aspect_ratio="pad", tokenizer_model_max_length=2048,
      tokenizer_padding_side="right", mm_vision_token_compression_type="quecc",
      mm_vision_output_text_embedding_size=llm.config.hidden_size,
      mm_vision_output_token_count=grid * grid,
      mm_vision_token_compression_kernel_size=kernel,
      mm_vision_token_compression_stride=kernel)
  _write_json(os.path.join(path, "config.json"), config)
  shards = [
      {"model." + n: t for n, t in llm.model.state_dict().items()},
      {"lm_head.weight": llm.lm_head.weight,
       **{"model.mm_projector." + n: t for n, t in mm_projector.state_dict().items()}}]
  weight_map = {}
  for i, shard in enumerate(shards, 1):
    name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
    save_file({n: t.detach().contiguous() for n, t in shard.items()}, os.path.join(path, name),
              metadata={"format": "pt"})
    weight_map.update(dict.fromkeys(shard, name))
  _write_json(os.path.join(path, "model.safetensors.index.json"),
              {"metadata": {}, "weight_map": weight_map})


def expand2square(image, background):
  """LLaVA's expand2square: the image centred on a square of `background`."""
  width, height = image.size
  if width == height:
    return image
  side = max(width, height)
  square = Image.new(image.mode, (side, side), background)
  square.paste(image, ((side - width) // 2, (side - height) // 2))
  return square


class PaperReference:
  """The paper's LLaVA-QueCC inference in PyTorch for one checkpoint (kernel).

  Image: LLaVA's `pad` (expand2square with the processor's mean colour), then the CLIP
  processor; prompt: PAPER_QWEN_PROMPT, tokenized chunk by chunk around `<image>` as
  LLaVA's tokenizer_image_token does; query: the LLM's last hidden state over
  tokenizer(question) (default special tokens); visual tokens: CLIP layer -2 (class
  token dropped), QueCC with the kv layers, projector; greedy decoding, the whole
  sequence recomputed each step, stopping at eos / `<|im_end|>`.
  """

  def __init__(self, parts, kernel, tokenizer):
    self.parts, self.tokenizer = parts, tokenizer
    self.quecc, self.projector = parts.quecc[kernel], parts.projector[kernel]

  def pixels(self, image):
    processor = self.parts.image_processor
    image = expand2square(image.convert("RGB"), tuple(int(x * 255) for x in processor.image_mean))
    return processor.preprocess(image, return_tensors="pt")["pixel_values"]

  def prompt_ids(self, prompt):
    """[ids before <image>], [ids after] of the paper's prompt."""
    before, after = PAPER_QWEN_PROMPT.format(prompt=prompt).split(IMAGE)
    return self.tokenizer(before).input_ids, self.tokenizer(after).input_ids

  def visual_tokens(self, image, question):
    llm, clip = self.parts.llm, self.parts.clip
    hidden = clip(pixel_values=self.pixels(image), output_hidden_states=True).hidden_states
    features = hidden[-2][:, 1:]
    multi = torch.cat([hidden[i][:, 1:] for i in self.parts.kv_layers], dim=-1)
    question_ids = torch.tensor([self.tokenizer(question).input_ids])
    query = llm.model(input_ids=question_ids).last_hidden_state[:, -1]
    return self.projector(self.quecc(features, multi, query))[0]

  def answer(self, image, prompt, max_new_tokens):
    """-> (answer text, new token ids)."""
    llm = self.parts.llm
    embed = llm.model.embed_tokens
    with torch.no_grad():
      before, after = self.prompt_ids(prompt)
      question = prompt.replace(IMAGE, "").strip()
      context = torch.cat([embed(torch.tensor(before)), self.visual_tokens(image, question),
                           embed(torch.tensor(after))])
      stop, new = set(stop_ids(self.tokenizer)), []
      for _ in range(max_new_tokens):
        token = int(llm(inputs_embeds=context[None]).logits[0, -1].argmax())
        new.append(token)
        if token in stop:
          break
        context = torch.cat([context, embed(torch.tensor([token]))])
    return self.tokenizer.decode(new, skip_special_tokens=True).strip(), new


# --- TextVQA in the LLaVA-1.5 evaluation layout -----------------------------------------

# (image file, (width, height)), and the questions: (image, question line, OCR tokens or
# None, whether the question file's text already ends with the instruction).
TEXTVQA_IMAGES = {"wide": (40, 28), "tall": (28, 40), "near": (36, 30)}
TEXTVQA_QUESTIONS = [
    ("wide", "What is written on the sign?", "stop, main", True),
    ("wide", "What colour is the car?", None, True),
    ("tall", "What is the brand of this camera?", "dakota, digital", True),
    ("tall", "What year is shown on the coin?", None, False),
    ("near", "Which word is printed on the red box?", "red, box", True),
]


def noise_image(size, seed):
  """A random-colour RGB image of (width, height) `size`."""
  width, height = size
  rng = np.random.default_rng(seed)
  return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def textvqa_folder(root):
  """ROOT/textvqa as LLaVA-1.5 lays it out: the question jsonl (image id as question_id),
  train_images/*.png, TextVQA_0.5.1_val.json. -> list of (question_id, image path, prompt),
  prompt being the text our harness (and LLaVA) puts after `<image>\\n`."""
  folder = os.path.join(root, "textvqa")
  os.makedirs(os.path.join(folder, "train_images"))
  for i, (name, size) in enumerate(TEXTVQA_IMAGES.items()):
    noise_image(size, seed=100 + i).save(os.path.join(folder, "train_images", f"{name}.png"))
  lines, annotations, expected = [], [], []
  for i, (image, question, ocr, instructed) in enumerate(TEXTVQA_QUESTIONS):
    text = question + (f"\n{OCR_PREFIX} {ocr}" if ocr else "")
    prompt = f"{text}\n{SHORT_ANSWER}"
    lines.append({"question_id": image, "image": f"{image}.png",
                  "text": prompt if instructed else text})
    annotations.append({"question_id": 1000 + i, "image_id": image, "question": question.lower(),
                        "answers": ["red"] * 10})
    expected.append((1000 + i, os.path.join(folder, "train_images", f"{image}.png"), prompt))
  with open(os.path.join(folder, "llava_textvqa_val_v051_ocr.jsonl"), "w") as f:
    f.writelines(json.dumps(line) + "\n" for line in lines)
  _write_json(os.path.join(folder, "TextVQA_0.5.1_val.json"), {"data": annotations})
  return expected


def read_jsonl(path):
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def run_cli(args):
  """`vlm-jax ARGS` in process -> its exit status (a SystemExit's code included)."""
  try:
    return cli.main([str(a) for a in args])
  except SystemExit as e:
    return e.code


def converted(src, dst):
  """`vlm-jax convert SRC DST` (asserting it succeeds) -> DST as a string."""
  assert run_cli(["convert", src, dst]) == 0
  return str(dst)


# --- fine-tuning data -------------------------------------------------------------------

FINETUNE_RECORDS = [  # (image name, (width, height), question, answer)
    ("wide.png", (40, 28), "What colour is the car?", "Red"),
    ("tall.png", (28, 40), "How many people are in the picture?", "There are two."),
    ("near.png", (36, 30), "What is written on the sign?", "stop main street"),
]


def llava_json_folder(root):
  """A LLaVA-format JSON of FINETUNE_RECORDS (one round each, `<image>\\n` first) and their
  noise images under root/images. -> (json path, image folder, records)."""
  image_dir = os.path.join(root, "images")
  os.makedirs(image_dir)
  records = []
  for i, (name, size, question, answer) in enumerate(FINETUNE_RECORDS):
    noise_image(size, seed=200 + i).save(os.path.join(image_dir, name))
    records.append({"id": f"r{i}", "image": name, "conversations": [
        {"from": "human", "value": f"{IMAGE}\n{question}"},
        {"from": "gpt", "value": answer}]})
  path = os.path.join(root, "train.json")
  _write_json(path, records)
  return path, image_dir, records


def hf_llava_labelled(user, image, question, answer):
  """(inputs, labels) of one conversation as LLaVA trains on it, built by the processor:
  the whole conversation through its chat template, labels -100 except on what the
  assistant's turn adds after the generation prompt (the answer and `<|im_end|>`, not the
  newline after it)."""
  processor = user.processor
  turns = [user_turn(question), {"role": "assistant",
                                 "content": [{"type": "text", "text": answer}]}]
  prompt = processor.apply_chat_template(turns[:1], add_generation_prompt=True)
  full = processor.apply_chat_template(turns)
  assert full.startswith(prompt)
  labelled = full[len(prompt):].rstrip()
  assert labelled == answer + IM_END
  ids = lambda text: processor(images=image, text=text, return_tensors="pt")["input_ids"][0]
  inputs = processor(images=image, text=full, return_tensors="pt")
  start, end = len(ids(prompt)), len(ids(prompt + labelled))
  assert inputs["input_ids"][0, :end].tolist() == ids(prompt + labelled).tolist()
  labels = torch.full_like(inputs["input_ids"], -100)
  labels[0, start:end] = inputs["input_ids"][0, start:end]
  return inputs, labels


def hf_llava_loss(user, examples):
  """Mean next-token cross-entropy over every labelled token of the batch `examples`
  [(image, question, answer)] (one sum over the batch, divided by the batch's labelled
  token count), and that count."""
  total, count = 0.0, 0
  for image, question, answer in examples:
    inputs, labels = hf_llava_labelled(user, image, question, answer)
    with torch.no_grad():
      logits = user.model(**inputs).logits[0, :-1].double()
    targets = labels[0, 1:]
    counted = targets != -100
    total += float(torch.nn.functional.cross_entropy(logits[counted], targets[counted],
                                                     reduction="sum"))
    count += int(counted.sum())
  return total / count, count
