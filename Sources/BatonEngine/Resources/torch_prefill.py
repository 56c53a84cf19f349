#!/usr/bin/env python3
"""PyTorch + transformers dense prefill: the "FlashAttn" baseline row that Baton's
`baton bench prefill` is compared with, on the same architecture with random weights.

  python3 bench/torch_prefill.py --preset llama-3.1-8b --tokens 8192,32768,131072 [--runs 3] [--json OUT]
  python3 bench/torch_prefill.py --config DIR_WITH_CONFIG_JSON ...   (random weights of any config)
  python3 bench/torch_prefill.py --model HF_MODEL_DIR ...            (the checkpoint's own weights)

`baton bench prefill --baseline torch` runs this script (embedded in the binary) with --config,
writing the preset's config.json, so both sides build exactly the same architecture.

Builds the model with random weights in bf16 on the GPU (attn_implementation="sdpa"), runs
one untimed warm-up per length, then times `--runs` forward passes of `tokens` random ids with
CUDA events, computing logits for the last position only (logits_to_keep=1), and prints the
median. Peak memory is reported too.
"""
import argparse, json, platform, statistics, sys, time

import torch
import transformers
from transformers import (AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM)

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
    ap.add_argument("--config", help="folder holding a config.json: random weights of that architecture")
    ap.add_argument("--model", help="Hugging Face model folder: its own weights")
    ap.add_argument("--device", default="cuda", help="cuda (CUDA events) or cpu (wall clock)")
    ap.add_argument("--tokens", default="8192,32768,131072")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sdpa-backend", default="default", choices=["default", "flash", "cudnn", "efficient", "math"],
                    help="restrict sdpa to one backend (default: PyTorch's own choice, cuDNN on an H100 with torch 2.11)")
    ap.add_argument("--use-cache", action="store_true",
                    help="keep the KV cache, as Baton's prefill does (the peak then includes it)")
    ap.add_argument("--json")
    a = ap.parse_args()
    from contextlib import nullcontext
    from torch.nn.attention import SDPBackend, sdpa_kernel
    backends = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}
    attention = (lambda: sdpa_kernel([backends[a.sdpa_backend]])) if a.sdpa_backend in backends else nullcontext
    torch.manual_seed(0)
    if a.model:
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16, attn_implementation="sdpa",
                                                     device_map=a.device).eval()
        config, name = model.config, a.model
    else:
        if a.config:
            config, name = AutoConfig.from_pretrained(a.config), a.config
            model_class = AutoModelForCausalLM.from_config
        else:
            config_class, model_class, fields = PRESETS[a.preset]
            config, name = config_class(**fields), a.preset
        config._attn_implementation = "sdpa"
        with torch.device(a.device):
            model = model_class(config).to(torch.bfloat16).eval()
    cuda = a.device.startswith("cuda")
    rows = []
    for n in [int(t) for t in a.tokens.split(",")]:
        ids = torch.randint(0, config.vocab_size, (1, n), device=a.device)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        times = []
        with torch.inference_mode(), attention():
            for run in range(1 + a.runs):
                if cuda:
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    output = model(ids, logits_to_keep=1, use_cache=a.use_cache)
                    end.record()
                    torch.cuda.synchronize()
                    seconds = start.elapsed_time(end) / 1000
                else:
                    began = time.perf_counter()
                    output = model(ids, logits_to_keep=1, use_cache=a.use_cache)
                    seconds = time.perf_counter() - began
                del output  # the cache (with --use-cache) goes before the next run
                if run > 0:
                    times.append(seconds)
        median = statistics.median(times)
        row = {"preset": name, "tokens": n, "runs": times, "median_s": median, "min_s": min(times),
               "max_s": max(times), "tokens_per_s": n / median, "sdpa_backend": a.sdpa_backend,
               "use_cache": a.use_cache,
               "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0}
        rows.append(row)
        print(f"torch+transformers sdpa ({a.sdpa_backend}{', cache' if a.use_cache else ''}) {name} {n:>7} tokens: median {median:.3f} s "
              f"({n / median:,.0f} tokens/s), peak {row['peak_gib']:.1f} GiB", flush=True)
    if a.json:
        json.dump({"torch": torch.__version__, "transformers": transformers.__version__,
                   "device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu", "rows": rows},
                  open(a.json, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
