#!/usr/bin/env python3
"""PyTorch + transformers dense prefill: the "FlashAttn" baseline row that Baton's
`baton bench prefill` is compared with, on the same architecture with random weights.

  python3 bench/torch_prefill.py --preset llama-3.1-8b --tokens 8192,32768,131072 [--runs 3] [--json OUT]

Builds the model from its config with random weights in bf16 on the GPU
(attn_implementation="sdpa"), runs one untimed warm-up per length, then times `--runs`
forward passes of `tokens` random ids with CUDA events, computing logits for the last
position only (logits_to_keep=1), and prints the median. Peak memory is reported too.
"""
import argparse, json, statistics, sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

# Public configs of the presets Baton knows (see Sources/BatonModels/ModelPreset.swift).
PRESETS = {
    "llama-3.1-8b": (LlamaConfig, LlamaForCausalLM, dict(
        hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, vocab_size=128256, max_position_embeddings=131072, rms_norm_eps=1e-5,
        rope_theta=500000.0, tie_word_embeddings=False,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192})),
    "qwen2.5-7b": (Qwen2Config, Qwen2ForCausalLM, dict(
        hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
        num_key_value_heads=4, vocab_size=152064, max_position_embeddings=131072, rms_norm_eps=1e-6,
        rope_theta=1000000.0, tie_word_embeddings=False)),
    "qwen2.5-14b": (Qwen2Config, Qwen2ForCausalLM, dict(
        hidden_size=5120, intermediate_size=13824, num_hidden_layers=48, num_attention_heads=40,
        num_key_value_heads=8, vocab_size=152064, max_position_embeddings=131072, rms_norm_eps=1e-5,
        rope_theta=1000000.0, tie_word_embeddings=False)),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="llama-3.1-8b", choices=sorted(PRESETS))
    ap.add_argument("--tokens", default="8192,32768,131072")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    config_class, model_class, fields = PRESETS[a.preset]
    config = config_class(**fields)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = model_class(config).to(torch.bfloat16).eval()
    rows = []
    for n in [int(t) for t in a.tokens.split(",")]:
        ids = torch.randint(0, config.vocab_size, (1, n), device="cuda")
        torch.cuda.reset_peak_memory_stats()
        times = []
        with torch.inference_mode():
            for run in range(1 + a.runs):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                model(ids, logits_to_keep=1, use_cache=False)
                end.record()
                torch.cuda.synchronize()
                if run > 0:
                    times.append(start.elapsed_time(end) / 1000)
        median = statistics.median(times)
        row = {"preset": a.preset, "tokens": n, "runs": times, "median_s": median, "min_s": min(times),
               "max_s": max(times), "tokens_per_s": n / median,
               "peak_gib": torch.cuda.max_memory_allocated() / 2**30}
        rows.append(row)
        print(f"torch+transformers sdpa {a.preset} {n:>7} tokens: median {median:.3f} s "
              f"({n / median:,.0f} tokens/s), peak {row['peak_gib']:.1f} GiB", flush=True)
    if a.json:
        json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "rows": rows},
                  open(a.json, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
