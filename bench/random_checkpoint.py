#!/usr/bin/env python3
"""Writes a Hugging Face checkpoint with random weights: a real architecture to serve or generate
with when its released weights are not at hand (the device machine has no network), for speed
runs of `baton serve` and `baton generate` on long inputs. The text it generates means nothing.

  python3 bench/random_checkpoint.py --config DIR_WITH_CONFIG_JSON --tokenizer DIR --out DIR [--device cuda]

The architecture comes from --config's config.json (any causal LM or Qwen2.5-VL / InternVL config
transformers knows); tokenizer.json, tokenizer_config.json, generation_config.json and, for
vision-language models, preprocessor_config.json are copied from --tokenizer, whose vocabulary must
fit the config's vocab_size. Weights are transformers' own random initialisation (seed 0) in bf16,
built on --device (initialising billions of parameters on the host takes minutes) and saved as
safetensors shards.
"""
import argparse, os, shutil, sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

COPIED = ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "preprocessor_config.json",
          "special_tokens_map.json", "chat_template.json"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    config = AutoConfig.from_pretrained(args.config)
    vision = config.model_type in ("qwen2_5_vl", "internvl")
    family = AutoModelForImageTextToText if vision else AutoModelForCausalLM
    torch.manual_seed(0)
    with torch.device(args.device):
        model = family.from_config(config, torch_dtype=torch.bfloat16)
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    for name in COPIED:
        source = os.path.join(args.tokenizer, name)
        if os.path.exists(source):
            shutil.copy(source, os.path.join(args.out, name))
    if not os.path.exists(os.path.join(args.out, "tokenizer.json")):
        sys.exit(f"random_checkpoint.py: {args.tokenizer} has no tokenizer.json")
    parameters = sum(p.numel() for p in model.parameters())
    print(f"random_checkpoint.py: wrote {args.out}: {config.model_type}, {parameters / 1e9:.2f}B parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
