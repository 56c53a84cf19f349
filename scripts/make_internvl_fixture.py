#!/usr/bin/env python3
"""Generate Tests/Fixtures/tiny-internvl(-original): a tiny random InternVL3 and transformers' fp32 outputs.

Usage:
    python3 scripts/make_internvl_fixture.py [FIXTURES_DIR]        # needs torch + transformers 5.x

FIXTURES_DIR defaults to Tests/Fixtures. Writes two directories holding the same bf16 weights:

- tiny-internvl/: the HF-native layout (`InternVLForConditionalGeneration`, `model_type: internvl`), config.json,
  generation_config.json and model.safetensors written by transformers' own `save_pretrained` (which stores the
  legacy on-disk names `vision_tower.*`, `multi_modal_projector.*`, `language_model.model.*`,
  `language_model.lm_head.weight`), preprocessor_config.json / processor_config.json, the tiny Qwen2 tokenizer of
  make_fixtures.py plus `<img>` 1005, `</img>` 1006, `<IMG_CONTEXT>` 1007, `<video>` 1008 (special) and a
  tokenizer_config.json carrying the HF-native InternVL chat template; and expected.json (schema in
  Tests/Fixtures/README.md).
- tiny-internvl-original/: the same checkpoint as OpenGVLab's remote-code `InternVLChatModel` stores it
  (`model_type: internvl_chat`, `vision_config` / `llm_config`, fused `attn.qkv`, `ls1`/`ls2`, `norm1`/`norm2`,
  `mlp1.{0,1,3}`, `class_embedding`), the same tokenizer files, and an expected.json that points to
  tiny-internvl/expected.json and lists the weight-name mapping. The script maps the original weights back and
  asserts they equal the HF-native ones bit for bit.

Reference numbers: the HF-native directory is reloaded with `from_pretrained(dtype=float32,
attn_implementation="eager")` on the CPU (one thread, deterministic algorithms); vision features come from
`get_image_features`, prompt logits from one forward without cache, greedy tokens both from
`generate(do_sample=False, use_cache=True)` and from whole-sequence recomputation. The LLM has
max_position_embeddings 48 and dynamic NTK RoPE (factor 2), so the two greedy semantics differ once a sequence
passes 48 positions: generate's cached keys keep the base they were rotated with, recomputation rotates every
position with the base of the current length. An independent float64 numpy forward (vision tower, pixel shuffle,
projector, Qwen2 with per-position RoPE bases) reproduces all of it; its deviations are recorded.
"""

from __future__ import annotations

import base64
import json
import math
import os
import platform
import shutil
import sys

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
from tokenizers import AddedToken

import make_fixtures as mf

HF_DIR, ORIGINAL_DIR = "tiny-internvl", "tiny-internvl-original"
SEED = 20260611
GREEDY_TOKENS = 8

# <video> is not used by the model; transformers 5 adds it to the vocabulary when tokenizer_config.json names it
# as `video_token` (the released InternVL3-*-hf tokenizers carry it after the image tokens), so it is part of the
# tokenizer from the start and every reader sees the same vocabulary.
VISION_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>", "<video>"]

VISION = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=56,
              patch_size=14, num_channels=3, attention_bias=True, use_qk_norm=False, norm_type="layer_norm",
              layer_norm_eps=1e-6, hidden_act="gelu")
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            head_dim=16, vocab_size=mf.MODEL_VOCAB_SIZE, max_position_embeddings=48, rms_norm_eps=1e-6,
            rope_theta=1000000.0, rope_scaling={"rope_type": "dynamic", "factor": 2.0}, hidden_act="silu",
            tie_word_embeddings=False, attention_dropout=0.0, use_sliding_window=False, sliding_window=None,
            max_window_layers=2)
DOWNSAMPLE_RATIO = 0.5
PROJECTOR_LN_EPS = 1e-5  # nn.LayerNorm's default, in transformers' projector and in the original mlp1.0
GRID = VISION["image_size"] // VISION["patch_size"]  # 4 patches per side
TOKENS_PER_TILE = int(GRID * DOWNSAMPLE_RATIO) ** 2  # 4 = image_seq_length

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PIXEL_RULE = "u8[t][c][y][x] = (3*x*x + 5*y*y + 7*x*y + 11*x + 13*y + 61*c + 97*t + 139*seed) % 256"
NORMALIZE_RULE = ("pixel_values[t][c][y][x] = Float32((Double(u8) / 255 - mean[c]) / std[c]), evaluated in float64 "
                  "and rounded once to float32")
# The image item stands for what dynamic tiling gives a 2:1 landscape image (two crops plus the thumbnail);
# each tile is simply the rule above with its own t. The video item is three frames, one tile each.
ITEMS = {"image": dict(tiles=3, seed=1), "video": dict(tiles=3, seed=2)}

# (name, content items in order, question). Prompt lengths: "image" 39, so even with its 8 generated tokens no
# position reaches max_position_embeddings (48) and the unscaled base is used throughout; "video" (78) and
# "image-and-video" exceed 48 from the prompt on; "image-at-limit" is exactly 48 tokens, so its prefill uses the
# unscaled base (L = 48 is not > 48) and every decode step a scaled one.
PROMPTS = [
    ("image", ["image"], "Describe this image."),
    ("video", ["video"], "What happens in this video? Describe the scene."),
    ("image-and-video", ["image", "video"], "Compare the picture with the clip."),
    ("image-at-limit", ["image"], "Please describe this image in detail."),
]
PROMPT_LENGTHS = {"image": 39, "video": 78, "image-at-limit": 48}

# The HF-native InternVL chat template (as the InternVL3-*-hf repos carry it): ChatML turns, no system message;
# an image item renders as "<IMG_CONTEXT>\n", a video item as "<video>\n", text as is. The processor then expands
# each <IMG_CONTEXT> to <img> + image_seq_length * tiles x <IMG_CONTEXT> + </img> and each <video> to the lines
# "FrameK: <img>...</img>" joined by "\n".
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<IMG_CONTEXT>\n' }}"
    "{% elif part['type'] == 'video' %}{{ '<video>\n' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# ----------------------------------------------------------------------------------------------
# Pixels
# ----------------------------------------------------------------------------------------------


def tiles_u8(tiles: int, seed: int) -> np.ndarray:
    s = VISION["image_size"]
    t, c, y, x = np.meshgrid(np.arange(tiles), np.arange(3), np.arange(s), np.arange(s), indexing="ij")
    v = 3 * x * x + 5 * y * y + 7 * x * y + 11 * x + 13 * y + 61 * c + 97 * t + 139 * seed
    return (v % 256).astype(np.uint8)


def normalize(u8: np.ndarray) -> np.ndarray:
    mean = np.array(IMAGENET_MEAN, dtype=np.float64)[None, :, None, None]
    std = np.array(IMAGENET_STD, dtype=np.float64)[None, :, None, None]
    return ((u8.astype(np.float64) / 255.0 - mean) / std).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Weights (drawn under the HF-native on-disk names, in sorted order, from one PCG64 stream)
# ----------------------------------------------------------------------------------------------


def hf_disk_shapes() -> dict[str, tuple]:
    c, f, p = VISION["hidden_size"], VISION["intermediate_size"], VISION["patch_size"]
    m = c * int(1 / DOWNSAMPLE_RATIO) ** 2
    d, ff, v, hd = TEXT["hidden_size"], TEXT["intermediate_size"], TEXT["vocab_size"], TEXT["head_dim"]
    q, kv = TEXT["num_attention_heads"] * hd, TEXT["num_key_value_heads"] * hd
    s = {"vision_tower.embeddings.cls_token": (1, 1, c),
         "vision_tower.embeddings.position_embeddings": (1, GRID * GRID + 1, c),
         "vision_tower.embeddings.patch_embeddings.projection.weight": (c, 3, p, p),
         "vision_tower.embeddings.patch_embeddings.projection.bias": (c,),
         "multi_modal_projector.layer_norm.weight": (m,), "multi_modal_projector.layer_norm.bias": (m,),
         "multi_modal_projector.linear_1.weight": (d, m), "multi_modal_projector.linear_1.bias": (d,),
         "multi_modal_projector.linear_2.weight": (d, d), "multi_modal_projector.linear_2.bias": (d,),
         "language_model.model.embed_tokens.weight": (v, d), "language_model.model.norm.weight": (d,),
         "language_model.lm_head.weight": (v, d)}
    for i in range(VISION["num_hidden_layers"]):
        pre = f"vision_tower.encoder.layer.{i}."
        s[pre + "lambda_1"] = (c,)
        s[pre + "lambda_2"] = (c,)
        for name, shape in [("attention.q_proj", (c, c)), ("attention.k_proj", (c, c)), ("attention.v_proj", (c, c)),
                            ("attention.projection_layer", (c, c)), ("mlp.fc1", (f, c)), ("mlp.fc2", (c, f))]:
            s[pre + name + ".weight"] = shape
            s[pre + name + ".bias"] = (shape[0],)
        for name in ("layernorm_before", "layernorm_after"):
            s[pre + name + ".weight"] = (c,)
            s[pre + name + ".bias"] = (c,)
    for i in range(TEXT["num_hidden_layers"]):
        pre = f"language_model.model.layers.{i}."
        s[pre + "input_layernorm.weight"] = (d,)
        s[pre + "post_attention_layernorm.weight"] = (d,)
        for name, shape, bias in [("self_attn.q_proj", (q, d), True), ("self_attn.k_proj", (kv, d), True),
                                  ("self_attn.v_proj", (kv, d), True), ("self_attn.o_proj", (d, q), False),
                                  ("mlp.gate_proj", (ff, d), False), ("mlp.up_proj", (ff, d), False),
                                  ("mlp.down_proj", (d, ff), False)]:
            s[pre + name + ".weight"] = shape
            if bias:
                s[pre + name + ".bias"] = (shape[0],)
    return s


def make_weights(seed: int, n_tokens: int, scaled_rows: list[int]) -> dict[str, np.ndarray]:
    """bf16-exact float32 weights. Norm gains 1 + N(0, 0.2), biases N(0, 0.2), layer scales U(0.2, 0.8) (far from
    both 1 and transformers' 0.1 init), cls / position embeddings N(0, 0.5), patch conv N(0, 0.05) (fan-in 588),
    token embeddings N(0, 0.5), lm_head N(0, 0.3), other linear weights N(0, 0.2). Embedding and lm_head rows of
    the vision tokens and of the padding ids >= n_tokens are scaled by 0.05, so greedy decoding never picks them."""
    rng = np.random.default_rng(seed)
    out, shapes = {}, hf_disk_shapes()
    for name in sorted(shapes):
        shape = shapes[name]
        if "lambda_" in name:
            w = rng.uniform(0.2, 0.8, shape)
        elif "norm" in name and name.endswith(".weight"):
            w = 1.0 + mf.INIT["norm"] * rng.standard_normal(shape)
        elif name.endswith(".bias"):
            w = mf.INIT["bias"] * rng.standard_normal(shape)
        elif name.endswith(("cls_token", "position_embeddings")):
            w = 0.5 * rng.standard_normal(shape)
        elif "patch_embeddings" in name:
            w = 0.05 * rng.standard_normal(shape)
        elif "embed_tokens" in name:
            w = mf.INIT["embed"] * rng.standard_normal(shape)
        elif name.endswith("lm_head.weight"):
            w = mf.INIT["lm_head"] * rng.standard_normal(shape)
        else:
            w = mf.INIT["linear"] * rng.standard_normal(shape)
        if "embed_tokens" in name or name.endswith("lm_head.weight"):
            w[n_tokens:] *= mf.PAD_ROW_SCALE
            w[scaled_rows] *= mf.PAD_ROW_SCALE
        out[name] = mf.bf16_round(w.astype(np.float32))
    return out


def disk_to_module_name(name: str) -> str:
    """HF-native on-disk name -> InternVLForConditionalGeneration parameter name (transformers 5)."""
    if name == "language_model.lm_head.weight":
        return "lm_head.weight"
    if name.startswith("language_model.model."):
        return "model.language_model." + name[len("language_model.model."):]
    return "model." + name


# ----------------------------------------------------------------------------------------------
# Original (OpenGVLab InternVLChatModel) layout
# ----------------------------------------------------------------------------------------------

VISION_LAYER_RENAMES = [  # HF-native suffix within layer i -> original suffix within layers i
    ("attention.projection_layer.", "attn.proj."), ("layernorm_before.", "norm1."), ("layernorm_after.", "norm2."),
    ("lambda_1", "ls1"), ("lambda_2", "ls2"), ("mlp.fc1.", "mlp.fc1."), ("mlp.fc2.", "mlp.fc2."),
]
PROJECTOR_RENAMES = [("multi_modal_projector.layer_norm.", "mlp1.0."), ("multi_modal_projector.linear_1.", "mlp1.1."),
                     ("multi_modal_projector.linear_2.", "mlp1.3.")]
EMBEDDING_RENAMES = [("vision_tower.embeddings.cls_token", "vision_model.embeddings.class_embedding"),
                     ("vision_tower.embeddings.position_embeddings", "vision_model.embeddings.position_embedding"),
                     ("vision_tower.embeddings.patch_embeddings.projection.", "vision_model.embeddings.patch_embedding.")]


def to_original(hf: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """HF-native on-disk tensors -> original tensors, plus original name -> HF-native source names."""
    out, sources = {}, {}
    for name, value in hf.items():
        new = None
        if name.startswith("language_model."):
            new = name
        for a, b in EMBEDDING_RENAMES + PROJECTOR_RENAMES:
            if name.startswith(a):
                new = b + name[len(a):]
        if name.startswith("vision_tower.encoder.layer."):
            index, rest = name[len("vision_tower.encoder.layer."):].split(".", 1)
            pre = f"vision_model.encoder.layers.{index}."
            if rest.startswith(("attention.q_proj.", "attention.k_proj.", "attention.v_proj.")):
                kind = rest.rsplit(".", 1)[1]
                if rest.startswith("attention.q_proj."):  # emit the fused tensor once, rows [q; k; v]
                    parts = [f"vision_tower.encoder.layer.{index}.attention.{p}_proj.{kind}" for p in "qkv"]
                    out[pre + "attn.qkv." + kind] = np.concatenate([hf[p] for p in parts], axis=0)
                    sources[pre + "attn.qkv." + kind] = parts
                continue
            for a, b in VISION_LAYER_RENAMES:
                if rest.startswith(a):
                    new = pre + b + rest[len(a):]
        assert new is not None, name
        out[new] = value
        sources[new] = [name]
    return out, sources


def from_original(orig: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inverse, written independently (split the fused qkv in thirds by rows, rename the rest)."""
    out = {}
    for name, value in orig.items():
        if name.startswith("language_model."):
            out[name] = value
        elif name.startswith("mlp1."):
            index, rest = name[len("mlp1."):].split(".", 1)
            out["multi_modal_projector." + {"0": "layer_norm", "1": "linear_1", "3": "linear_2"}[index] + "." + rest] = value
        elif name == "vision_model.embeddings.class_embedding":
            out["vision_tower.embeddings.cls_token"] = value
        elif name == "vision_model.embeddings.position_embedding":
            out["vision_tower.embeddings.position_embeddings"] = value
        elif name.startswith("vision_model.embeddings.patch_embedding."):
            out["vision_tower.embeddings.patch_embeddings.projection." + name.rsplit(".", 1)[1]] = value
        elif name.startswith("vision_model.encoder.layers."):
            index, rest = name[len("vision_model.encoder.layers."):].split(".", 1)
            pre = f"vision_tower.encoder.layer.{index}."
            if rest.startswith("attn.qkv."):
                third = value.shape[0] // 3
                for j, p in enumerate("qkv"):
                    out[pre + f"attention.{p}_proj." + rest.rsplit(".", 1)[1]] = value[j * third:(j + 1) * third]
            else:
                table = {"attn.proj": "attention.projection_layer", "norm1": "layernorm_before",
                         "norm2": "layernorm_after", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
                if rest in ("ls1", "ls2"):
                    out[pre + "lambda_" + rest[2]] = value
                else:
                    module, kind = rest.rsplit(".", 1)
                    out[pre + table[module] + "." + kind] = value
        else:
            raise KeyError(name)
    return out


def original_config(ids: dict) -> dict:
    vision = {"architectures": ["InternVisionModel"], "attention_dropout": 0.0, "drop_path_rate": 0.0, "dropout": 0.0,
              "hidden_act": VISION["hidden_act"], "hidden_size": VISION["hidden_size"],
              "image_size": VISION["image_size"], "initializer_factor": 1.0, "initializer_range": 0.02,
              "intermediate_size": VISION["intermediate_size"], "layer_norm_eps": VISION["layer_norm_eps"],
              "model_type": "intern_vit_6b", "norm_type": VISION["norm_type"],
              "num_attention_heads": VISION["num_attention_heads"], "num_channels": VISION["num_channels"],
              "num_hidden_layers": VISION["num_hidden_layers"], "patch_size": VISION["patch_size"],
              "qk_normalization": VISION["use_qk_norm"], "qkv_bias": VISION["attention_bias"],
              "torch_dtype": "bfloat16", "use_bfloat16": True, "use_flash_attn": False}
    llm = {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": ids["<|endoftext|>"],
           "eos_token_id": ids["<|im_end|>"], "hidden_act": TEXT["hidden_act"], "hidden_size": TEXT["hidden_size"],
           "initializer_range": 0.02, "intermediate_size": TEXT["intermediate_size"],
           "max_position_embeddings": TEXT["max_position_embeddings"], "max_window_layers": TEXT["max_window_layers"],
           "model_type": "qwen2", "num_attention_heads": TEXT["num_attention_heads"],
           "num_hidden_layers": TEXT["num_hidden_layers"], "num_key_value_heads": TEXT["num_key_value_heads"],
           "rms_norm_eps": TEXT["rms_norm_eps"],
           # as in InternVL3-1B's llm_config: both spellings of the scaling kind
           "rope_scaling": {"factor": TEXT["rope_scaling"]["factor"], "rope_type": "dynamic", "type": "dynamic"},
           "rope_theta": TEXT["rope_theta"], "sliding_window": None, "tie_word_embeddings": False,
           "torch_dtype": "bfloat16", "use_bfloat16": True, "use_cache": True, "use_sliding_window": False,
           "vocab_size": TEXT["vocab_size"]}
    return {"architectures": ["InternVLChatModel"],
            "auto_map": {"AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
                         "AutoModel": "modeling_internvl_chat.InternVLChatModel",
                         "AutoModelForCausalLM": "modeling_internvl_chat.InternVLChatModel"},
            "downsample_ratio": DOWNSAMPLE_RATIO, "dynamic_image_size": True,
            "force_image_size": VISION["image_size"], "hidden_size": TEXT["hidden_size"], "llm_config": llm,
            "max_dynamic_patch": 12, "min_dynamic_patch": 1, "model_type": "internvl_chat", "pad2square": False,
            "ps_version": "v2", "select_layer": -1, "template": "internvl2_5", "tie_word_embeddings": False,
            "torch_dtype": "bfloat16", "use_backbone_lora": 0, "use_llm_lora": 0, "use_thumbnail": True,
            "vision_config": vision}


# ----------------------------------------------------------------------------------------------
# Tokenizer and prompts
# ----------------------------------------------------------------------------------------------


def build_tokenizer():
    tok = mf.build_tokenizer("qwen2")
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in VISION_TOKENS])
    return tok


def tokenizer_config(tok) -> dict:
    cfg = mf.tokenizer_config("qwen2", tok)
    image_tokens = {"context_image_token": "<IMG_CONTEXT>", "end_image_token": "</img>", "start_image_token": "<img>",
                    "video_token": "<video>"}
    cfg.update(image_tokens)
    cfg["model_specific_special_tokens"] = dict(image_tokens)
    cfg["chat_template"] = CHAT_TEMPLATE
    cfg["model_max_length"] = 8192
    cfg["return_token_type_ids"] = False
    return dict(sorted(cfg.items()))


def messages_for(kinds: list[str], question: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": k} for k in kinds] + [{"type": "text", "text": question}]}]


def expand_prompt(kinds: list[str], question: str) -> str:
    """Our own rendering of template + processor expansion (checked against transformers' below)."""
    def block(tiles: int) -> str:
        return "<img>" + "<IMG_CONTEXT>" * (TOKENS_PER_TILE * tiles) + "</img>"

    user = ""
    for kind in kinds:
        tiles = ITEMS[kind]["tiles"]
        if kind == "image":
            user += block(tiles) + "\n"
        else:
            user += "\n".join(f"Frame{k + 1}: " + block(1) for k in range(tiles)) + "\n"
    return "<|im_start|>user\n" + user + question + "<|im_end|>\n<|im_start|>assistant\n"


# ----------------------------------------------------------------------------------------------
# Independent numpy float64 reference
# ----------------------------------------------------------------------------------------------

_erf = np.vectorize(math.erf)


def np_gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def np_layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def np_vision(W: dict, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """InternViT + pixel shuffle (v2) + projector, float64. Returns the tower output, the shuffled features and
    the projected features."""
    W = {k: v.astype(np.float64) for k, v in W.items()}
    n, c, p, heads = pixels.shape[0], VISION["hidden_size"], VISION["patch_size"], VISION["num_attention_heads"]
    hd = c // heads
    x = pixels.astype(np.float64).reshape(n, 3, GRID, p, GRID, p).transpose(0, 2, 4, 1, 3, 5).reshape(n, GRID * GRID, -1)
    e = "vision_tower.embeddings."
    h = x @ W[e + "patch_embeddings.projection.weight"].reshape(c, -1).T + W[e + "patch_embeddings.projection.bias"]
    h = np.concatenate([np.broadcast_to(W[e + "cls_token"], (n, 1, c)), h], axis=1) + W[e + "position_embeddings"]
    for i in range(VISION["num_hidden_layers"]):
        pre = f"vision_tower.encoder.layer.{i}."

        def lin(v, name):
            return v @ W[pre + name + ".weight"].T + W[pre + name + ".bias"]

        a = np_layer_norm(h, W[pre + "layernorm_before.weight"], W[pre + "layernorm_before.bias"], VISION["layer_norm_eps"])
        q, k, v = (lin(a, f"attention.{t}_proj").reshape(n, -1, heads, hd) for t in "qkv")
        s = np.einsum("nthd,nshd->nhts", q, k) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = np.einsum("nhts,nshd->nthd", s, v).reshape(n, -1, c)
        h = h + W[pre + "lambda_1"] * lin(o, "attention.projection_layer")
        m = np_layer_norm(h, W[pre + "layernorm_after.weight"], W[pre + "layernorm_after.bias"], VISION["layer_norm_eps"])
        h = h + W[pre + "lambda_2"] * lin(np_gelu(lin(m, "mlp.fc1")), "mlp.fc2")
    tower = h
    # Drop the class token; output token (R, C) of the 2x2-downsampled grid concatenates the input tokens
    # (2R, 2C), (2R, 2C+1), (2R+1, 2C), (2R+1, 2C+1), channels innermost.
    g = GRID // 2
    grid = tower[:, 1:, :].reshape(n, g, 2, g, 2, c)  # [n, R, dy, C, dx, ch]
    shuffled = grid.transpose(0, 1, 3, 2, 4, 5).reshape(n, g * g, 4 * c)
    pj = "multi_modal_projector."
    y = np_layer_norm(shuffled, W[pj + "layer_norm.weight"], W[pj + "layer_norm.bias"], PROJECTOR_LN_EPS)
    y = np_gelu(y @ W[pj + "linear_1.weight"].T + W[pj + "linear_1.bias"])
    y = y @ W[pj + "linear_2.weight"].T + W[pj + "linear_2.bias"]
    return {"tower": tower, "shuffled": shuffled, "features": y.reshape(n * g * g, -1)}


def ntk_base(length: int) -> float:
    """Dynamic-NTK RoPE base for a sequence whose largest position id is length - 1 (transformers' formula)."""
    base, limit, factor, dim = TEXT["rope_theta"], TEXT["max_position_embeddings"], TEXT["rope_scaling"]["factor"], TEXT["head_dim"]
    if length <= limit:
        return base
    return base * ((factor * length / limit) - (factor - 1)) ** (dim / (dim - 2))


def inv_freq(base: float) -> np.ndarray:
    dim = TEXT["head_dim"]
    return 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float64) / dim))


def np_text(W: dict, embeds: np.ndarray, bases: list[float]) -> np.ndarray:
    """Qwen2 causal forward, float64; position t is rotated with the RoPE base bases[t] (for both its query and
    its key), which reproduces both cached decoding and whole-sequence recomputation."""
    W = {k: v.astype(np.float64) for k, v in W.items()}
    T, nh, nkv, hd, eps = len(embeds), TEXT["num_attention_heads"], TEXT["num_key_value_heads"], TEXT["head_dim"], TEXT["rms_norm_eps"]
    ang = np.stack([t * inv_freq(b) for t, b in enumerate(bases)])
    cos = np.concatenate([np.cos(ang)] * 2, axis=-1)[:, None, :]
    sin = np.concatenate([np.sin(ang)] * 2, axis=-1)[:, None, :]

    def rms(v, g):
        return v / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + eps) * g

    def rot(v):
        half = v.shape[-1] // 2
        return np.concatenate([-v[..., half:], v[..., :half]], axis=-1)

    mask = np.triu(np.full((T, T), -np.inf), k=1)
    x = embeds.astype(np.float64)
    for i in range(TEXT["num_hidden_layers"]):
        pre = f"language_model.model.layers.{i}."
        h = rms(x, W[pre + "input_layernorm.weight"])
        q = (h @ W[pre + "self_attn.q_proj.weight"].T + W[pre + "self_attn.q_proj.bias"]).reshape(T, nh, hd)
        k = (h @ W[pre + "self_attn.k_proj.weight"].T + W[pre + "self_attn.k_proj.bias"]).reshape(T, nkv, hd)
        v = (h @ W[pre + "self_attn.v_proj.weight"].T + W[pre + "self_attn.v_proj.bias"]).reshape(T, nkv, hd)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = np.repeat(k, nh // nkv, axis=1), np.repeat(v, nh // nkv, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        x = x + np.einsum("hts,shd->thd", s, v).reshape(T, nh * hd) @ W[pre + "self_attn.o_proj.weight"].T
        h = rms(x, W[pre + "post_attention_layernorm.weight"])
        gate, up = h @ W[pre + "mlp.gate_proj.weight"].T, h @ W[pre + "mlp.up_proj.weight"].T
        x = x + ((gate / (1 + np.exp(-gate))) * up) @ W[pre + "mlp.down_proj.weight"].T
    return rms(x, W["language_model.model.norm.weight"]) @ W["language_model.lm_head.weight"].T


def np_embed(W: dict, ids: list[int], features: np.ndarray, image_id: int) -> np.ndarray:
    e = W["language_model.model.embed_tokens.weight"].astype(np.float64)[ids]
    slots = [t for t, i in enumerate(ids) if i == image_id]
    assert len(slots) == len(features)
    e[slots] = features
    return e


def np_greedy(W, ids, features, image_id, cached: bool) -> tuple[list[int], np.ndarray]:
    seq, new, rows = list(ids), [], []
    prompt_len = len(ids)
    for _ in range(GREEDY_TOKENS):
        L = len(seq)
        if cached:  # prompt keys rotated at prefill with the prompt's base; token t later with base(t + 1)
            bases = [ntk_base(prompt_len)] * prompt_len + [ntk_base(t + 1) for t in range(prompt_len, L)]
        else:
            bases = [ntk_base(L)] * L
        row = np_text(W, np_embed(W, seq, features, image_id), bases)[-1]
        rows.append(row)
        new.append(int(np.argmax(row)))
        seq.append(new[-1])
    return new, np.stack(rows)


# ----------------------------------------------------------------------------------------------
# Output helpers
# ----------------------------------------------------------------------------------------------


def f32_b64(a) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def f32_list(a: np.ndarray) -> list:
    return [float(v) for v in np.asarray(a, dtype=np.float32).reshape(-1)]


def top2_margins(rows: np.ndarray) -> list[float]:
    s = np.sort(rows, axis=-1)
    return [round(float(v), 6) for v in (s[:, -1] - s[:, -2])]


def write_json_compact_arrays(path: str, obj) -> None:
    """Indented JSON, but numeric lists longer than 64 on one line; float32 data written in its shortest
    round-trip form (Float(string) in Swift gives back the exact float32)."""
    blobs = {}

    def walk(o):
        if isinstance(o, dict):
            return {k: walk(v) for k, v in o.items()}
        if isinstance(o, list):
            if len(o) > 64 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in o):
                key = f"@@ARRAY{len(blobs)}@@"
                if all(isinstance(v, int) for v in o):
                    blobs[key] = "[" + ",".join(str(v) for v in o) + "]"
                else:
                    blobs[key] = "[" + ",".join(str(np.float32(v)) for v in o) + "]"
                return key
            return [walk(v) for v in o]
        return o

    text = json.dumps(walk(obj), ensure_ascii=False, indent=2)
    for key, blob in blobs.items():
        text = text.replace(f'"{key}"', blob)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def versions() -> dict:
    import safetensors
    import tokenizers
    import torch
    import transformers

    return {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__}


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------


def make(root: str) -> None:
    import torch
    from transformers import AutoTokenizer, GenerationConfig, InternVLConfig, InternVLForConditionalGeneration

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    notes = []

    hf_dir, orig_dir = os.path.join(root, HF_DIR), os.path.join(root, ORIGINAL_DIR)
    for d in (hf_dir, orig_dir):
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)

    # Tokenizer.
    tok = build_tokenizer()
    assert build_tokenizer().to_str() == tok.to_str(), "BPE training is not deterministic"
    ids = {t: tok.token_to_id(t) for t in mf.QWEN_SPECIALS + VISION_TOKENS}
    assert [ids[t] for t in VISION_TOKENS] == [1005, 1006, 1007, 1008], ids
    image_id = ids["<IMG_CONTEXT>"]
    n_tokens = tok.get_vocab_size(with_added_tokens=True)
    tok.save(os.path.join(hf_dir, "tokenizer.json"))
    mf.write_json(os.path.join(hf_dir, "tokenizer_config.json"), tokenizer_config(tok))

    # Weights -> transformers model -> save_pretrained (bf16).
    scaled = [ids[t] for t in VISION_TOKENS]
    weights = make_weights(SEED, n_tokens, scaled)
    text_cfg = dict(TEXT, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=None)
    config = InternVLConfig(text_config=text_cfg, vision_config=dict(VISION), image_token_id=image_id,
                            image_seq_length=TOKENS_PER_TILE, downsample_ratio=DOWNSAMPLE_RATIO,
                            projector_hidden_act="gelu", vision_feature_layer=-1,
                            vision_feature_select_strategy="default", tie_word_embeddings=False)
    config.architectures = ["InternVLForConditionalGeneration"]
    model = InternVLForConditionalGeneration(config)
    state = {disk_to_module_name(k): torch.from_numpy(v.copy()) for k, v in weights.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    model = model.to(torch.bfloat16)
    model.save_pretrained(hf_dir)
    assert sorted(os.listdir(hf_dir)) == sorted(["config.json", "generation_config.json", "model.safetensors",
                                                 "tokenizer.json", "tokenizer_config.json"]), os.listdir(hf_dir)
    on_disk = {k: v.astype(np.float32) for k, v in load_numpy_bf16(os.path.join(hf_dir, "model.safetensors")).items()}
    assert sorted(on_disk) == sorted(weights), sorted(set(on_disk) ^ set(weights))
    for k in weights:
        assert np.array_equal(on_disk[k], weights[k]), k

    # Processor side files, as transformers writes them.
    write_processor_files(hf_dir)

    # Original layout: same bf16 tensors, renamed / fused, and the mapping back checked bit for bit.
    orig, sources = to_original(weights)
    back = from_original(orig)
    assert sorted(back) == sorted(weights)
    for k in weights:
        assert back[k].dtype == weights[k].dtype and np.array_equal(back[k], weights[k]), k
    save_torch_bf16({k: orig[k] for k in sorted(orig)}, os.path.join(orig_dir, "model.safetensors"))
    reread = load_numpy_bf16(os.path.join(orig_dir, "model.safetensors"))
    back = from_original({k: v.astype(np.float32) for k, v in reread.items()})
    for k in weights:
        assert np.array_equal(back[k], weights[k]), k
    mf.write_json(os.path.join(orig_dir, "config.json"), original_config(ids))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(hf_dir, name), os.path.join(orig_dir, name))

    # transformers' tokenizer: vocabulary unchanged on load, template and processor expansion equal ours.
    hf_tok = AutoTokenizer.from_pretrained(hf_dir)
    assert len(hf_tok) == n_tokens, (len(hf_tok), n_tokens)
    assert (hf_tok.start_image_token_id, hf_tok.end_image_token_id, hf_tok.context_image_token_id) == (1005, 1006, 1007)
    processor = make_processor(hf_tok)

    # Reference model: reload what is on disk, in float32.
    ref, info = InternVLForConditionalGeneration.from_pretrained(hf_dir, dtype=torch.float32,
                                                                 attn_implementation="eager", output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    ref.eval()
    assert ref.lm_head.weight.data_ptr() != ref.model.language_model.embed_tokens.weight.data_ptr()
    rotary = ref.model.language_model.rotary_emb

    def reset_rope():
        # transformers keeps the grown dynamic-NTK frequencies between calls (and only resets them for
        # sequences shorter than max_position_embeddings); every reference computation starts fresh.
        rotary.inv_freq = rotary.original_inv_freq.clone()
        rotary.max_seq_len_cached = rotary.original_max_seq_len

    u8 = {k: tiles_u8(v["tiles"], v["seed"]) for k, v in ITEMS.items()}
    pixels = {k: normalize(v) for k, v in u8.items()}
    expected = {
        "format_version": 1,
        "family": "internvl",
        "model_dir": HF_DIR,
        "original_model_dir": ORIGINAL_DIR,
        "generator": {"script": "scripts/make_internvl_fixture.py",
                      "command": "/work/venvs/qwenvl/bin/python scripts/make_internvl_fixture.py",
                      "versions": versions(), "weights_seed": SEED, "device": "cpu", "compute_dtype": "float32",
                      "weights_dtype_on_disk": "bfloat16", "attn_implementation": "eager"},
        "token_ids": ids,
        "config": config_summary(),
        "pixels": {"rule": PIXEL_RULE, "normalize": NORMALIZE_RULE, "mean": list(IMAGENET_MEAN),
                   "std": list(IMAGENET_STD), "image_size": VISION["image_size"], "items": {}},
        "vision": {},
        "prompts": [],
        "generator_report": {"notes": notes},
    }
    np_feats = {}
    with torch.no_grad():
        for kind, item in ITEMS.items():
            expected["pixels"]["items"][kind] = {
                "tiles": item["tiles"], "seed": item["seed"], "shape": list(pixels[kind].shape),
                "layout": ("3 tiles standing for dynamic tiling of a 2:1 image: 2 crops + thumbnail" if kind == "image"
                           else "3 frames, one tile each"),
                "u8_sum": int(u8[kind].astype(np.int64).sum()), "pixel_values": f32_list(pixels[kind])}
            out = ref.get_image_features(pixel_values=torch.from_numpy(pixels[kind]))
            feats = out.pooler_output.float().numpy().reshape(-1, TEXT["hidden_size"])
            tower = out.last_hidden_state.float().numpy()
            shuffled = hf_shuffled(ref, out.last_hidden_state).float().numpy()
            mine = np_vision(weights, pixels[kind])
            np_feats[kind] = mine["features"]
            expected["vision"][kind] = {
                "shape": list(feats.shape), "data_b64": f32_b64(feats), "sum": float(feats.astype(np.float64).sum()),
                "tower_last_hidden_state": {"shape": list(tower.shape), "data_b64": f32_b64(tower)},
                "pixel_shuffled": {"shape": list(shuffled.shape), "data_b64": f32_b64(shuffled)},
                "numpy_float64_max_abs_diff": {
                    "tower": float(np.abs(mine["tower"] - tower).max()),
                    "pixel_shuffled": float(np.abs(mine["shuffled"] - shuffled).max()),
                    "features": float(np.abs(mine["features"] - feats).max())}}
            for part, diff in expected["vision"][kind]["numpy_float64_max_abs_diff"].items():
                assert diff < 1e-4, (kind, part, diff)

        expected["processor_check"] = processor_check(processor, hf_tok, u8, pixels)
        for name, kinds, question in PROMPTS:
            text = expand_prompt(kinds, question)
            input_ids = tok.encode(text, add_special_tokens=False).ids
            rendered = hf_tok.apply_chat_template(messages_for(kinds, question), add_generation_prompt=True, tokenize=False)
            hf_text, hf_ids = processor_ids(processor, kinds, question)
            assert hf_text == text and hf_ids == input_ids, (name, hf_text, text)
            assert hf_tok(text, add_special_tokens=False)["input_ids"] == input_ids
            L = len(input_ids)
            assert PROMPT_LENGTHS.get(name, L) == L, (name, L)
            pv = torch.from_numpy(np.concatenate([pixels[k] for k in kinds]))
            features = np.concatenate([np_feats[k] for k in kinds])
            reset_rope()
            logits = ref(input_ids=torch.tensor([input_ids]), pixel_values=pv, use_cache=False).logits[0].float().numpy()
            rows = sorted({0, L // 2, L - 1})
            np_logits = np_text(weights, np_embed(weights, input_ids, features, image_id), [ntk_base(L)] * L)

            # generate(): KV cache, each decode step's RoPE base from its own position.
            reset_rope()
            gen_cfg = GenerationConfig(do_sample=False, max_new_tokens=GREEDY_TOKENS, eos_token_id=None,
                                       pad_token_id=ids["<|endoftext|>"], repetition_penalty=1.0, use_cache=True,
                                       return_dict_in_generate=True, output_logits=True)
            out = ref.generate(input_ids=torch.tensor([input_ids]), attention_mask=torch.ones(1, L, dtype=torch.long),
                               pixel_values=pv, generation_config=gen_cfg)
            gen_ids = out.sequences[0, L:].tolist()
            gen_rows = torch.cat(out.logits, dim=0).float().numpy()
            assert len(gen_ids) == GREEDY_TOKENS and gen_ids == [int(np.argmax(r)) for r in gen_rows]

            # Whole-sequence recomputation each step (no cache): every position with base(current length).
            seq, rec_ids, rec_rows = list(input_ids), [], []
            for _ in range(GREEDY_TOKENS):
                reset_rope()
                row = ref(input_ids=torch.tensor([seq]), pixel_values=pv, use_cache=False).logits[0, -1].float().numpy()
                rec_rows.append(row)
                rec_ids.append(int(np.argmax(row)))
                seq.append(rec_ids[-1])
            rec_rows = np.stack(rec_rows)

            np_cached_ids, np_cached_rows = np_greedy(weights, input_ids, features, image_id, cached=True)
            np_rec_ids, np_rec_rows = np_greedy(weights, input_ids, features, image_id, cached=False)
            differ = [i for i in range(GREEDY_TOKENS) if gen_ids[i] != rec_ids[i]]
            check = {"prompt_logits": float(np.abs(np_logits - logits).max()),
                     "generate_step_logits": float(np.abs(np_cached_rows - gen_rows).max()),
                     "recompute_step_logits": float(np.abs(np_rec_rows - rec_rows).max()),
                     "generate_ids_equal": np_cached_ids == gen_ids, "recompute_ids_equal": np_rec_ids == rec_ids}
            assert check["prompt_logits"] < 1e-3 and check["generate_step_logits"] < 1e-3, (name, check)
            assert check["recompute_step_logits"] < 1e-3, (name, check)
            if not (check["generate_ids_equal"] and check["recompute_ids_equal"]):
                notes.append(f"{name}: numpy float64 greedy tokens differ from transformers' ({check})")
            expected["prompts"].append({
                "name": name, "items": kinds, "question": question,
                "messages": messages_for(kinds, question),
                "chat_template_text": rendered,
                "text": text, "input_ids": input_ids, "length": L,
                "max_position_embeddings": TEXT["max_position_embeddings"],
                "exceeds_max_position_embeddings": L > TEXT["max_position_embeddings"],
                "image_token_count": input_ids.count(image_id),
                "pixel_tiles": sum(ITEMS[k]["tiles"] for k in kinds),
                "rope_base_prompt": ntk_base(L),
                "rope_base_generate_steps": [ntk_base(L + k) for k in range(GREEDY_TOKENS)],
                "logit_rows": rows, "logits_shape": [len(rows), TEXT["vocab_size"]],
                "logits_b64": f32_b64(logits[rows]),
                "argmax_rows": [int(np.argmax(logits[r])) for r in rows],
                "generate_new_ids": gen_ids,
                "generate_step_logits_b64": f32_b64(gen_rows),
                "generate_top2_margins": top2_margins(gen_rows),
                "recompute_new_ids": rec_ids,
                "recompute_step_logits_b64": f32_b64(rec_rows),
                "recompute_top2_margins": top2_margins(rec_rows),
                "generate_and_recompute_differ": bool(differ),
                "first_difference": differ[0] if differ else None,
                "step_logits_max_abs_diff_generate_vs_recompute": float(np.abs(gen_rows - rec_rows).max()),
                "text_generate": hf_tok.decode(gen_ids, skip_special_tokens=False),
                "eos_generated": any(i in (ids["<|im_end|>"], ids["<|endoftext|>"]) for i in gen_ids + rec_ids),
                "numpy_float64_check": check})
        expected["generator_report"]["transformers_observations"] = observations(ref, reset_rope, expected, pixels, hf_dir)
    write_json_compact_arrays(os.path.join(hf_dir, "expected.json"), expected)
    mf.write_json(os.path.join(orig_dir, "expected.json"), original_pointer(sources))


def observations(ref, reset_rope, expected: dict, pixels: dict, hf_dir: str) -> dict:
    """Checks of transformers 5 behaviour a Baton implementation must know about (not test data)."""
    import tempfile

    import torch
    from transformers import AutoTokenizer, InternVLConfig, InternVLForConditionalGeneration

    out = {}
    # 1. RoPE state: after a long sequence, a sequence of exactly max_position_embeddings positions keeps the
    #    grown (scaled) frequencies; only shorter ones reset them.
    by_name = {p["name"]: p for p in expected["prompts"]}
    long, limit = by_name["video"], by_name["image-at-limit"]

    def last_row(p):
        pv = torch.from_numpy(np.concatenate([pixels[k] for k in p["items"]]))
        return ref(input_ids=torch.tensor([p["input_ids"]]), pixel_values=pv, use_cache=False).logits[0, -1].float().numpy()

    reset_rope()
    fresh = last_row(limit)
    last_row(long)
    stale = last_row(limit)
    reset_rope()
    out["rope_state_leaks_into_a_48_token_forward_after_a_78_token_one"] = {
        "max_abs_logit_change": float(np.abs(stale - fresh).max()),
        "note": "transformers' dynamic RoPE keeps its grown frequencies between calls and resets them only for "
                "sequences shorter than max_position_embeddings; the fixture resets them before every reference "
                "computation, so each prompt's numbers are those of a fresh model"}
    # 2. <video>: transformers adds it to the vocabulary when tokenizer_config.json declares it and tokenizer.json
    #    lacks it (hence it is in tokenizer.json from the start).
    with tempfile.TemporaryDirectory() as tmp:
        tok = mf.build_tokenizer("qwen2")
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in VISION_TOKENS[:3]])
        tok.save(os.path.join(tmp, "tokenizer.json"))
        cfg = tokenizer_config(tok)
        mf.write_json(os.path.join(tmp, "tokenizer_config.json"), cfg)
        loaded = AutoTokenizer.from_pretrained(tmp)
        out["video_token_added_on_load_when_missing"] = {
            "tokenizer_json_size": tok.get_vocab_size(with_added_tokens=True), "transformers_len": len(loaded),
            "video_id": loaded.convert_tokens_to_ids("<video>")}
    # 3. Tying: transformers 5.24 decides from the top-level tie_word_embeddings of InternVLConfig (default true),
    #    not from text_config's.
    base = json.load(open(os.path.join(hf_dir, "config.json")))
    tied = {}
    for label, top in (("top_level_absent", None), ("top_level_false", False)):
        c = {k: v for k, v in base.items() if k not in ("architectures", "transformers_version", "model_type")}
        c.pop("tie_word_embeddings")
        if top is not None:
            c["tie_word_embeddings"] = top
        m = InternVLForConditionalGeneration(InternVLConfig(**c))
        tied[label] = m.lm_head.weight.data_ptr() == m.model.language_model.embed_tokens.weight.data_ptr()
    out["lm_head_tied_with_text_config_tie_false"] = tied
    return out


def load_numpy_bf16(path: str) -> dict[str, np.ndarray]:
    """Read a bf16 safetensors file into float32 numpy arrays (exact) without torch."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        assert meta["dtype"] == "BF16", (name, meta["dtype"])
        a, b = meta["data_offsets"]
        raw = np.frombuffer(data[8 + n + a:8 + n + b], dtype="<u2").astype(np.uint32) << 16
        out[name] = raw.view(np.float32).reshape(meta["shape"])
    return out


def save_torch_bf16(tensors: dict[str, np.ndarray], path: str) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({k: torch.from_numpy(np.ascontiguousarray(v)).to(torch.bfloat16) for k, v in tensors.items()}, path,
              metadata={"format": "pt"})


def hf_shuffled(model, last_hidden_state):
    import torch

    feats = last_hidden_state[:, 1:, :]
    n = feats.shape[0]
    feats = feats.reshape(n, GRID, GRID, -1)
    feats = model.model.pixel_shuffle(feats, scale_factor=DOWNSAMPLE_RATIO)
    return feats.reshape(n, -1, feats.shape[-1])


def image_processor():
    from transformers import GotOcr2ImageProcessor

    return GotOcr2ImageProcessor(size={"height": VISION["image_size"], "width": VISION["image_size"]},
                                 image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD),
                                 crop_to_patches=True, min_patches=1, max_patches=12)


def make_processor(hf_tok):
    """transformers' InternVLProcessor without a video processor (the video processor needs torchvision, and
    only its replace_video_token text expansion is used here)."""
    from transformers import InternVLProcessor

    class ProcessorWithoutVideoBackend(InternVLProcessor):
        def check_argument_for_proper_class(self, argument_name, argument):
            if argument_name == "video_processor" and argument is None:
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    return ProcessorWithoutVideoBackend(image_processor=image_processor(), tokenizer=hf_tok, video_processor=None,
                                        image_seq_length=TOKENS_PER_TILE, chat_template=CHAT_TEMPLATE)


def write_processor_files(hf_dir: str) -> None:
    """preprocessor_config.json as the image processor saves itself (plus the processor_class key a processor
    save adds) and processor_config.json as InternVLProcessor writes it."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        image_processor().save_pretrained(tmp)
        with open(os.path.join(tmp, "preprocessor_config.json")) as f:
            cfg = json.load(f)
    cfg["processor_class"] = "InternVLProcessor"
    mf.write_json(os.path.join(hf_dir, "preprocessor_config.json"), dict(sorted(cfg.items())))
    mf.write_json(os.path.join(hf_dir, "processor_config.json"),
                  {"image_seq_length": TOKENS_PER_TILE, "processor_class": "InternVLProcessor"})


def processor_ids(processor, kinds: list[str], question: str) -> list[int]:
    """transformers' own template rendering + placeholder expansion, then its tokenizer. Images: the processor's
    expansion with 3 tiles; videos: its replace_video_token for a 3-frame video (no video backend needed)."""
    import torch

    rendered = processor.apply_chat_template(messages_for(kinds, question), add_generation_prompt=True, tokenize=False)
    image_repl = [processor.replace_image_token({"num_patches": [ITEMS["image"]["tiles"]]}, 0)] if "image" in kinds else []
    video_repl = ([processor.replace_video_token({"pixel_values_videos": [torch.zeros(ITEMS["video"]["tiles"], 3, 1, 1)]}, 0)]
                  if "video" in kinds else [])
    texts, _ = processor.get_text_with_replacements([rendered], images_replacements=image_repl,
                                                    videos_replacements=video_repl)
    return texts[0], processor.tokenizer(texts[0], add_special_tokens=False)["input_ids"]


def processor_check(processor, hf_tok, u8: dict, pixels: dict) -> dict:
    """Run the real image processor on a 112x56 image whose halves are image tiles 0 and 1: it must cut 2 crops +
    a thumbnail (3 tiles, 12 context tokens) and its crops must match our normalisation rule."""
    from PIL import Image

    wide = np.concatenate([u8["image"][0], u8["image"][1]], axis=2).transpose(1, 2, 0)  # HWC, 56 x 112
    rendered = processor.apply_chat_template(messages_for(["image"], "Describe this image."), add_generation_prompt=True,
                                             tokenize=False)
    out = processor(text=rendered, images=[Image.fromarray(np.ascontiguousarray(wide))], return_tensors="np")
    pv = np.asarray(out["pixel_values"], dtype=np.float32)
    ids = [int(i) for i in np.asarray(out["input_ids"])[0]]
    assert pv.shape == (3, 3, VISION["image_size"], VISION["image_size"]), pv.shape
    assert ids.count(hf_tok.context_image_token_id) == 3 * TOKENS_PER_TILE
    diff = float(np.abs(pv[:2] - pixels["image"][:2]).max())
    assert diff < 1e-5, diff
    return {"image_size_wh": [2 * VISION["image_size"], VISION["image_size"]], "tiles": int(pv.shape[0]),
            "context_tokens": ids.count(hf_tok.context_image_token_id),
            "crops_vs_rule_max_abs_diff": diff,
            "note": "GotOcr2 image processor (PIL backend) on a 112x56 image made of image tiles 0 and 1: 2 crops "
                    "+ thumbnail; its crops equal pixel_values tiles 0 and 1 up to this difference. The fixture's "
                    "tile 2 is the rule's own tile, not the processor's bicubic thumbnail."}


def config_summary() -> dict:
    return {
        "model_type": "internvl", "architectures": ["InternVLForConditionalGeneration"],
        "image_token_id": 1007, "image_seq_length": TOKENS_PER_TILE, "downsample_ratio": DOWNSAMPLE_RATIO,
        "projector_hidden_act": "gelu", "projector_layer_norm_eps": PROJECTOR_LN_EPS,
        "vision_feature_layer": -1, "vision_feature_select_strategy": "default", "tie_word_embeddings": False,
        "vision": dict(VISION, model_type="internvl_vision", patches_per_side=GRID,
                       tokens_per_tile_before_shuffle=GRID * GRID, use_mean_pooling=True,
                       layer_scale="lambda_1 / lambda_2 on disk (ls1 / ls2 in the original layout), random in [0.2, 0.8]"),
        "text": {k: v for k, v in TEXT.items() if k != "rope_scaling"} | {
            "model_type": "qwen2",
            "rope": {"rope_type": "dynamic", "rope_theta": TEXT["rope_theta"], "factor": TEXT["rope_scaling"]["factor"],
                     "formula": "L = max position id + 1; if L > max_position_embeddings: base = rope_theta * "
                                "((factor * L / max_position_embeddings) - (factor - 1)) ** (head_dim / (head_dim - 2))"},
            "config_json_rope_key": "rope_parameters (transformers 5); the original llm_config uses rope_scaling"},
        "weight_files": ["model.safetensors"], "weights_dtype": "bfloat16",
    }


def original_pointer(sources: dict) -> dict:
    return {
        "expected": f"../{HF_DIR}/expected.json",
        "note": ("Same checkpoint as tiny-internvl in OpenGVLab's InternVLChatModel layout: every tensor here maps to "
                 "the HF-native on-disk tensors listed (attn.qkv = rows [q; k; v] concatenated), bit for bit, so "
                 "tiny-internvl/expected.json applies unchanged (image_token_id: the tokenizer's <IMG_CONTEXT>; "
                 "num_image_token = (force_image_size / patch_size)^2 * downsample_ratio^2 = 4)."),
        "weight_name_map": {k: sources[k] for k in sorted(sources)},
    }


if __name__ == "__main__":
    make(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures"))
