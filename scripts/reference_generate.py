#!/usr/bin/env python3
"""Greedy continuation of prompts by Hugging Face transformers, the reference that
`baton generate` must reproduce token for token.

  python3 scripts/reference_generate.py MODEL_DIR OUT.json [--max-new-tokens 32]

Loads the checkpoint as it is on disk and computes in float32 on the CPU (eager attention),
so rounding in the reference stays far below Baton's. Writes, per prompt: the prompt text, its
ids (special tokens added as the tokenizer does by default), the 32 greedy ids (EOS not treated
as a stop, so the ids are always complete), the decoded text and the smallest top-1/top-2 logit
margin along the way (a small margin means a near tie the comparison could trip on).
"""
import argparse, json, sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a little girl named",
    "def fibonacci(n):\n    ",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model"); ap.add_argument("out")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    a = ap.parse_args()
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32, attn_implementation="eager").eval()
    cases = []
    for prompt in PROMPTS:
        ids = tok(prompt, return_tensors="pt").input_ids
        new, margins = [], []
        with torch.no_grad():
            seq = ids
            for _ in range(a.max_new_tokens):
                logits = model(seq).logits[0, -1]
                top = torch.topk(logits, 2)
                margins.append(float(top.values[0] - top.values[1]))
                nxt = int(top.indices[0])
                new.append(nxt)
                seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
        cases.append({"prompt": prompt, "prompt_ids": ids[0].tolist(), "new_ids": new,
                      "text": tok.decode(new), "min_top2_margin": min(margins)})
        print(repr(prompt), "->", repr(tok.decode(new)), file=sys.stderr)
    json.dump({"model": a.model.rstrip("/").split("/")[-1], "compute_dtype": "float32",
               "transformers": transformers.__version__, "torch": torch.__version__,
               "command": "python3 scripts/reference_generate.py MODEL_DIR OUT.json", "cases": cases},
              open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
