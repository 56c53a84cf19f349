#!/usr/bin/env python3
"""Generate Tests/Fixtures/tiny-qwen2-vl: a tiny random Qwen2.5-VL and transformers' fp32 outputs.

Usage:
    python3 scripts/make_qwen2vl_fixture.py [OUT_DIR]          # needs torch + transformers 5.x
    PYTHONPATH=<transformers 4.51 dir> python3 scripts/make_qwen2vl_fixture.py --check-positions [OUT_DIR]

OUT_DIR defaults to Tests/Fixtures/tiny-qwen2-vl. Writes config.json (flat text keys, as the released
checkpoints are), model.safetensors (bf16, released names `visual.*` / `model.*`, tied LM head),
the tiny Qwen2 tokenizer of make_fixtures.py plus the five vision tokens, and expected.json:

- pixels: per item (one image, one two-unit video) its grid_thw and the rule that makes its rows
  (value = ((i * 7919 + j * 104729 + 31337 * seed) mod 4001 - 2000) / 1024 for row i, column j: exact
  in float32, so Baton regenerates the same rows; the processor's preprocessing is tested elsewhere);
- vision: the vision tower's merged output per item, full ([t*h*w/4, 64] fp32, base64);
- prompts: input ids, M-RoPE positions [3, T] with transformers 4.51 `get_rope_index` semantics
  (reimplemented below; transformers 5 shifts text after a video differently, VIDEO.md 9), the
  rope delta, fp32 logits of the last position and of a few full rows, and 8 greedy tokens.
  Logits come from transformers 5's model with those positions passed explicitly, greedy tokens
  from a loop that recomputes the whole sequence each step with 4.51 positions.

--check-positions (run with transformers 4.51 on PYTHONPATH) recomputes every prompt's positions
with 4.51's own `get_rope_index` and fails if they differ from expected.json.
"""

from __future__ import annotations

import base64
import json
import os
import sys

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
from tokenizers import AddedToken

import make_fixtures as mf

VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
VISION = dict(
    depth=3, hidden_size=32, num_heads=2, intermediate_size=48, in_chans=3, patch_size=14, spatial_patch_size=14,
    temporal_patch_size=2, spatial_merge_size=2, window_size=56, fullatt_block_indexes=[1], tokens_per_second=2,
    out_hidden_size=64, hidden_act="silu", model_type="qwen2_5_vl",
)
TEXT = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    max_position_embeddings=2048, rms_norm_eps=1e-6, rope_theta=1000000.0, vocab_size=mf.MODEL_VOCAB_SIZE,
    hidden_act="silu", tie_word_embeddings=True, use_sliding_window=False, sliding_window=32768, max_window_layers=2,
    attention_dropout=0.0,
)
MROPE_SECTION = [2, 3, 3]  # head_dim 16 -> 8 frequencies
# Window 56 px = 2x2 merge units: the image's 3x4 merge units split into windows of 4, 4, 2, 2 (and
# empty padded ones), the video's 2x3 per unit into 4 and 2. Three temporal units: the temporal extent
# (t up to 4) exceeds the spatial one, where transformers 5 and 4.51 place the following text differently.
ITEMS = {"image": dict(grid=[1, 6, 8], seed=1), "video": dict(grid=[3, 4, 6], seed=2, second_per_grid=1.0)}
SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
PROMPTS = [
    ("image", ["image"], "Describe this image."),
    ("video", ["video"], "What is in this video?"),
    ("image-and-video", ["image", "video"], "Compare them."),
]
GREEDY_TOKENS = 8
SEED = 20260529


def pixel_rows(grid: list[int], seed: int) -> np.ndarray:
    n = grid[0] * grid[1] * grid[2]
    i = np.arange(n, dtype=np.int64)[:, None]
    j = np.arange(1176, dtype=np.int64)[None, :]
    return (((i * 7919 + j * 104729 + 31337 * seed) % 4001 - 2000) / 1024.0).astype(np.float32)


def vision_shapes() -> dict[str, tuple]:
    c, f, m = VISION["hidden_size"], VISION["intermediate_size"], VISION["hidden_size"] * 4
    s = {"visual.patch_embed.proj.weight": (c, 3, 2, 14, 14), "visual.merger.ln_q.weight": (c,),
         "visual.merger.mlp.0.weight": (m, m), "visual.merger.mlp.0.bias": (m,),
         "visual.merger.mlp.2.weight": (VISION["out_hidden_size"], m), "visual.merger.mlp.2.bias": (VISION["out_hidden_size"],)}
    for b in range(VISION["depth"]):
        p = f"visual.blocks.{b}."
        s[p + "norm1.weight"] = (c,)
        s[p + "norm2.weight"] = (c,)
        for name, shape in [("attn.qkv", (3 * c, c)), ("attn.proj", (c, c)), ("mlp.gate_proj", (f, c)),
                            ("mlp.up_proj", (f, c)), ("mlp.down_proj", (c, f))]:
            s[p + name + ".weight"] = shape
            s[p + name + ".bias"] = (shape[0],)
    return s


def text_shapes() -> dict[str, tuple]:
    d, ff, v = TEXT["hidden_size"], TEXT["intermediate_size"], TEXT["vocab_size"]
    hd = d // TEXT["num_attention_heads"]
    q, kv = TEXT["num_attention_heads"] * hd, TEXT["num_key_value_heads"] * hd
    s = {"model.embed_tokens.weight": (v, d), "model.norm.weight": (d,)}
    for l in range(TEXT["num_hidden_layers"]):
        p = f"model.layers.{l}."
        s[p + "input_layernorm.weight"] = (d,)
        s[p + "post_attention_layernorm.weight"] = (d,)
        for name, shape, bias in [("self_attn.q_proj", (q, d), True), ("self_attn.k_proj", (kv, d), True),
                                  ("self_attn.v_proj", (kv, d), True), ("self_attn.o_proj", (d, q), False),
                                  ("mlp.gate_proj", (ff, d), False), ("mlp.up_proj", (ff, d), False),
                                  ("mlp.down_proj", (d, ff), False)]:
            s[p + name + ".weight"] = shape
            if bias:
                s[p + name + ".bias"] = (shape[0],)
    return s


def build_tokenizer():
    tok = mf.build_tokenizer("qwen2")
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in VISION_TOKENS])
    return tok


def config_json(ids: dict) -> dict:
    cfg = {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl", **TEXT,
           "rope_scaling": {"type": "mrope", "mrope_section": MROPE_SECTION}, "torch_dtype": "bfloat16",
           "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
           "vision_start_token_id": ids["<|vision_start|>"], "vision_end_token_id": ids["<|vision_end|>"],
           "vision_token_id": ids["<|vision_pad|>"], "image_token_id": ids["<|image_pad|>"],
           "video_token_id": ids["<|video_pad|>"], "vision_config": VISION}
    return cfg


def prompt_ids(tok, kinds: list[str], question: str, ids: dict) -> list[int]:
    text = SYSTEM
    for kind in kinds:
        grid = ITEMS[kind]["grid"]
        pad = "<|image_pad|>" if kind == "image" else "<|video_pad|>"
        text += "<|vision_start|>" + pad * (grid[0] * grid[1] * grid[2] // 4) + "<|vision_end|>"
    text += question + "<|im_end|>\n<|im_start|>assistant\n"
    return tok.encode(text, add_special_tokens=False).ids


def positions_451(input_ids: list[int], kinds: list[str], ids: dict) -> tuple[np.ndarray, int]:
    """transformers 4.51 Qwen2_5_VLForConditionalGeneration.get_rope_index, batch 1, no padding."""
    image_id, video_id, merge = ids["<|image_pad|>"], ids["<|video_pad|>"], VISION["spatial_merge_size"]
    tps = VISION["tokens_per_second"]
    chunks, st = [], 0
    images = [ITEMS[k] for k in kinds if k == "image"]
    videos = [ITEMS[k] for k in kinds if k == "video"]
    remain_images, remain_videos = len(images), len(videos)
    for _ in range(len(kinds)):
        ed_image = input_ids.index(image_id, st) if remain_images > 0 else len(input_ids) + 1
        ed_video = input_ids.index(video_id, st) if remain_videos > 0 else len(input_ids) + 1
        if ed_image < ed_video:
            item, g, ed = images[len(images) - remain_images], np.float32(0), ed_image
            remain_images -= 1
        else:
            item = videos[len(videos) - remain_videos]
            g, ed = np.float32(item.get("second_per_grid", 1.0)), ed_video
            remain_videos -= 1
        t, h, w = item["grid"][0], item["grid"][1] // merge, item["grid"][2] // merge
        st_idx = max(c.max() for c in chunks) + 1 if chunks else 0
        chunks.append(np.tile(np.arange(ed - st), (3, 1)) + st_idx)
        # (arange(T) * second_per_grid_t) * tokens_per_second in float32, truncated.
        t_index = ((np.arange(t, dtype=np.float32) * g) * np.float32(tps)).astype(np.int64)
        t_index = np.repeat(t_index, h * w)
        h_index = np.tile(np.repeat(np.arange(h), w), t)
        w_index = np.tile(np.arange(w), t * h)
        chunks.append(np.stack([t_index, h_index, w_index]) + (ed - st) + st_idx)
        st = ed + t * h * w
    if st < len(input_ids):
        st_idx = max(c.max() for c in chunks) + 1 if chunks else 0
        chunks.append(np.tile(np.arange(len(input_ids) - st), (3, 1)) + st_idx)
    positions = np.concatenate(chunks, axis=1)
    return positions, int(positions.max() + 1 - len(input_ids))


def f32_b64(a) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def make(out_dir: str) -> None:
    import torch
    import transformers
    from safetensors.torch import save_file
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    os.makedirs(out_dir, exist_ok=True)
    tok = build_tokenizer()
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    tcfg = mf.tokenizer_config("qwen2", tok)
    mf.write_json(os.path.join(out_dir, "tokenizer_config.json"), tcfg)
    ids = {t: tok.token_to_id(t) for t in VISION_TOKENS + mf.QWEN_SPECIALS}
    config = config_json(ids)
    mf.write_json(os.path.join(out_dir, "config.json"), config)

    n_tokens = tok.get_vocab_size(with_added_tokens=True)
    weights = mf.make_weights({**vision_shapes(), **text_shapes()}, SEED, bf16=True, n_tokens=n_tokens)
    # The tied LM head must practically never pick a vision token (a generated <|video_pad|> would be
    # a vision run without pixels): their rows are scaled down like the padding rows.
    vision_rows = [ids[t] for t in VISION_TOKENS]
    weights["model.embed_tokens.weight"][vision_rows] *= mf.PAD_ROW_SCALE
    weights["model.embed_tokens.weight"] = mf.bf16_round(weights["model.embed_tokens.weight"])
    bf16 = {k: torch.from_numpy(v).to(torch.bfloat16) for k, v in sorted(weights.items())}  # exact: already rounded
    save_file(bf16, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})

    hf_config = Qwen2_5_VLConfig(**{k: v for k, v in config.items() if k not in ("architectures", "torch_dtype")})
    model = Qwen2_5_VLForConditionalGeneration(hf_config).to(torch.float32).eval()
    state = {}
    for name, value in weights.items():  # released names -> transformers 5's module names
        if name.startswith("visual."):
            name = "model." + name
        elif name.startswith("model."):
            name = "model.language_model." + name[len("model."):]
        state[name] = torch.from_numpy(value)
    state["lm_head.weight"] = state["model.language_model.embed_tokens.weight"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(m == "lm_head.weight" for m in missing), (missing, unexpected)

    expected = {"generator": {"script": "scripts/make_qwen2vl_fixture.py", "transformers": transformers.__version__,
                              "torch": torch.__version__, "weights_seed": SEED,
                              "positions": "transformers 4.51 get_rope_index semantics (reimplemented; checked with "
                                           "--check-positions against 4.51.3)"},
                "token_ids": ids, "pixels": {}, "vision": {}, "prompts": []}
    pixels = {k: torch.from_numpy(pixel_rows(v["grid"], v["seed"])) for k, v in ITEMS.items()}
    with torch.no_grad():
        for kind, item in ITEMS.items():
            grid = torch.tensor([item["grid"]])
            out = model.model.visual(pixels[kind], grid_thw=grid)
            merged = out.pooler_output if hasattr(out, "pooler_output") else out
            merged = merged.float().numpy()
            expected["pixels"][kind] = {"grid_thw": item["grid"], "seed": item["seed"],
                                        "rule": "((i*7919 + j*104729 + 31337*seed) % 4001 - 2000) / 1024"}
            expected["vision"][kind] = {"shape": list(merged.shape), "data_b64": f32_b64(merged),
                                        "sum": float(merged.astype(np.float64).sum())}
        for name, kinds, question in PROMPTS:
            input_ids = prompt_ids(tok, kinds, question, ids)
            positions, delta = positions_451(input_ids, kinds, ids)

            def forward(sequence: list[int], pos: np.ndarray):
                kwargs = {}
                if "image" in kinds:
                    kwargs.update(pixel_values=pixels["image"], image_grid_thw=torch.tensor([ITEMS["image"]["grid"]]))
                if "video" in kinds:
                    kwargs.update(pixel_values_videos=pixels["video"], video_grid_thw=torch.tensor([ITEMS["video"]["grid"]]),
                                  second_per_grid_ts=torch.tensor([ITEMS["video"]["second_per_grid"]]))
                return model(input_ids=torch.tensor([sequence]), position_ids=torch.from_numpy(pos)[:, None, :],
                             use_cache=False, **kwargs).logits[0].float().numpy()

            logits = forward(input_ids, positions)
            sequence, new = list(input_ids), []
            step_logits = logits
            for _ in range(GREEDY_TOKENS):
                token = int(np.argmax(step_logits[-1]))
                new.append(token)
                sequence.append(token)
                step_positions, _ = positions_451(sequence, kinds, ids)
                step_logits = forward(sequence, step_positions)
            rows = sorted({0, len(input_ids) // 2, len(input_ids) - 1})
            expected["prompts"].append({
                "name": name, "items": kinds, "input_ids": input_ids, "positions": positions.tolist(),
                "rope_delta": delta, "logit_rows": rows, "logits_b64": f32_b64(logits[rows]),
                "greedy_new_ids": new})
    mf.write_json(os.path.join(out_dir, "expected.json"), expected)


def check_positions(out_dir: str) -> int:
    import torch
    import transformers
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = json.load(open(os.path.join(out_dir, "config.json")))
    expected = json.load(open(os.path.join(out_dir, "expected.json")))
    model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**config))
    failures = 0
    for prompt in expected["prompts"]:
        kinds = prompt["items"]
        images = [ITEMS[k]["grid"] for k in kinds if k == "image"]
        videos = [ITEMS[k]["grid"] for k in kinds if k == "video"]
        positions, delta = model.get_rope_index(
            torch.tensor([prompt["input_ids"]]), image_grid_thw=torch.tensor(images) if images else None,
            video_grid_thw=torch.tensor(videos) if videos else None,
            second_per_grid_ts=torch.tensor([ITEMS["video"]["second_per_grid"]] * len(videos)) if videos else None,
            attention_mask=torch.ones(1, len(prompt["input_ids"]), dtype=torch.long))
        same = positions[:, 0, :].tolist() == prompt["positions"] and int(delta.item()) == prompt["rope_delta"]
        print(f"{prompt['name']}: transformers {transformers.__version__} positions "
              f"{'equal' if same else 'DIFFER'} (delta {int(delta.item())} vs {prompt['rope_delta']})")
        failures += not same
    return 1 if failures else 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "tiny-qwen2-vl")
    if "--check-positions" in sys.argv:
        sys.exit(check_positions(out))
    make(out)
