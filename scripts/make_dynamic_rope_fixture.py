#!/usr/bin/env python3
"""Generate Tests/Fixtures/dynamic-rope/expected.json: transformers' dynamic NTK RoPE on tiny-qwen2.

Usage:
    python3 scripts/make_dynamic_rope_fixture.py [OUT_FILE]    # needs torch + transformers 5.x

The checkpoint is Tests/Fixtures/tiny-qwen2 (fp32) with two config changes, also written to the JSON
under `config_overrides` so the Swift tests apply the same ones: max_position_embeddings 32 and
rope_scaling {"rope_type": "dynamic", "factor": 2.0} (InternVL3's language models use factor 2).
transformers' `dynamic_rope_update` then recomputes the inverse frequencies whenever a forward call's
largest position + 1 (L) exceeds 32: base' = base * (factor * L / 32 - (factor - 1)) ** (d / (d - 2)).

Cases (each on a freshly loaded model, since transformers keeps the largest L seen in the module):
- long_prompt: 50 prompt tokens (L = 50 > 32 at prefill), then 8 greedy tokens decoded one at a time
  through the KV cache (each step at L = position + 1; cached keys keep the frequencies they were
  rotated with);
- crossing: 30 prompt tokens (L = 30, plain frequencies), 8 greedy tokens; the decoding steps cross
  L = 32 -> 33, where the frequencies switch.
Each case stores fp32 logits of a few prefill rows and the logits behind every greedy token (step 0 is
the prefill's last row), the ids, top-1 minus top-2 margins, and two controls that show the numbers
tell the semantics apart: the same loop without rope scaling, and greedy decoding that recomputes the
whole sequence every step (every key rotated again with that step's frequencies).
"""

from __future__ import annotations

import base64
import json
import math
import os
import sys

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np
import torch
import transformers
from transformers import Qwen2Config, Qwen2ForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_DIR = os.path.join(ROOT, "Tests", "Fixtures", "tiny-qwen2")
MAX_POSITIONS = 32
FACTOR = 2.0
NEW_TOKENS = 8
# (name, prompt length, step of the id rule, prefill rows stored). The ids, (i * step + 11) mod 997, stay
# inside the tokenizer's 1005 without its special ids 1000-1004; the steps were picked for greedy
# margins of 0.2 or more (step 37 leaves 0.001 in the crossing case).
CASES = [("long_prompt", 50, 37, [24, 49]), ("crossing", 30, 53, [29])]


def prompt(length: int, step: int) -> list[int]:
    return [(i * step + 11) % 997 for i in range(length)]


def f32_b64(a) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def load(dynamic: bool) -> Qwen2ForCausalLM:
    config = Qwen2Config.from_pretrained(MODEL_DIR)
    config.max_position_embeddings = MAX_POSITIONS
    theta = config.rope_parameters["rope_theta"]
    config.rope_parameters = (
        {"rope_type": "dynamic", "factor": FACTOR, "rope_theta": theta}
        if dynamic
        else {"rope_type": "default", "rope_theta": theta}
    )
    model = Qwen2ForCausalLM.from_pretrained(
        MODEL_DIR, config=config, dtype=torch.float32, attn_implementation="eager"
    )
    return model.eval()


def expected_inverse_frequencies(config, length: int) -> np.ndarray:
    """The formula in float64, to check what transformers used at each step."""
    d = config.head_dim
    base = config.rope_parameters["rope_theta"]
    if length > MAX_POSITIONS:
        base *= (FACTOR * length / MAX_POSITIONS - (FACTOR - 1)) ** (d / (d - 2))
    return 1.0 / base ** (np.arange(0, d, 2, dtype=np.float64) / d)


@torch.no_grad()
def cached_greedy(model, ids: list[int], check_frequencies: bool) -> dict:
    """Prefill, then one token per forward through the KV cache; every forward's logits."""
    rotary = model.model.rotary_emb
    out = model(input_ids=torch.tensor([ids]), use_cache=True)
    prefill = out.logits[0].float().numpy()
    past, steps, lengths, worst = out.past_key_values, [prefill[-1]], [len(ids)], 0.0
    new_ids = [int(prefill[-1].argmax())]
    while len(new_ids) < NEW_TOKENS:
        if check_frequencies:
            used = rotary.inv_freq.double().numpy()
            worst = max(worst, float(np.abs(used / expected_inverse_frequencies(model.config, lengths[-1]) - 1).max()))
        position = len(ids) + len(new_ids) - 1
        out = model(
            input_ids=torch.tensor([[new_ids[-1]]]), position_ids=torch.tensor([[position]]),
            past_key_values=past, use_cache=True,
        )
        past, row = out.past_key_values, out.logits[0, -1].float().numpy()
        steps.append(row)
        lengths.append(position + 1)
        new_ids.append(int(row.argmax()))
    return dict(prefill=prefill, steps=np.stack(steps), new_ids=new_ids, lengths=lengths, frequency_error=worst)


@torch.no_grad()
def recomputed_greedy(model, ids: list[int]) -> list[int]:
    sequence = list(ids)
    for _ in range(NEW_TOKENS):
        sequence.append(int(model(input_ids=torch.tensor([sequence])).logits[0, -1].argmax()))
    return sequence[len(ids):]


def margins(rows: np.ndarray) -> list[float]:
    top = np.sort(rows, axis=1)
    return [float(x) for x in top[:, -1] - top[:, -2]]


def main() -> None:
    default = os.path.join(ROOT, "Tests", "Fixtures", "dynamic-rope", "expected.json")
    out_file = sys.argv[1] if len(sys.argv) > 1 else default
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    cases = []
    for name, length, step, rows in CASES:
        ids = prompt(length, step)
        dynamic = cached_greedy(load(dynamic=True), ids, check_frequencies=True)
        assert dynamic["frequency_error"] < 1e-5, dynamic["frequency_error"]
        plain = cached_greedy(load(dynamic=False), ids, check_frequencies=False)
        recomputed = recomputed_greedy(load(dynamic=True), ids)
        generated = load(dynamic=True).generate(
            torch.tensor([ids]), do_sample=False, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
            eos_token_id=None, pad_token_id=0, repetition_penalty=1.0,  # generation_config.json says 1.05
        )[0, length:].tolist()
        assert generated == dynamic["new_ids"], (generated, dynamic["new_ids"])
        cases.append({
            "name": name,
            "prompt_ids": ids,
            "max_new_tokens": NEW_TOKENS,
            "new_ids": dynamic["new_ids"],
            "rope_lengths": dynamic["lengths"],
            "top2_margins": margins(dynamic["steps"]),
            "prefill_logit_rows": rows,
            "prefill_logits_b64": f32_b64(dynamic["prefill"][rows]),
            "step_logits_b64": f32_b64(dynamic["steps"]),
            "vocab_size": int(dynamic["steps"].shape[1]),
            "generate_new_ids": generated,
            "max_relative_frequency_error": dynamic["frequency_error"],
            "controls": {
                "plain_rope_new_ids": plain["new_ids"],
                "plain_rope_step_logits_max_abs_diff": float(np.abs(plain["steps"] - dynamic["steps"]).max()),
                "plain_rope_prefill_logits_max_abs_diff": float(
                    np.abs(plain["prefill"][rows] - dynamic["prefill"][rows]).max()),
                "recomputed_new_ids": recomputed,
            },
        })
        print(name, "new ids", dynamic["new_ids"], "plain", plain["new_ids"], "recomputed", recomputed,
              "min margin %.4f" % min(cases[-1]["top2_margins"]), file=sys.stderr)
    expected = {
        "format_version": 1,
        "model_dir": "tiny-qwen2",
        "generator": {
            "command": "python3 scripts/make_dynamic_rope_fixture.py",
            "versions": {"python": sys.version.split()[0], "transformers": transformers.__version__,
                         "torch": torch.__version__, "numpy": np.__version__},
        },
        "config_overrides": {
            "max_position_embeddings": MAX_POSITIONS,
            "rope_scaling": {"rope_type": "dynamic", "factor": FACTOR},
        },
        "reference": {"compute_dtype": "float32", "device": "cpu", "attn_implementation": "eager"},
        "cases": cases,
    }
    os.makedirs(os.path.dirname(out_file), exist_ok=True)
    with open(out_file, "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
