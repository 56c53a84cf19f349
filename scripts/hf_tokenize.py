#!/usr/bin/env python3
"""Reference encodings from Hugging Face `tokenizers`, for Baton's tokenizer cross-check test.

Usage: python3 scripts/hf_tokenize.py REQUEST.json > RESPONSE.json
REQUEST: {"tokenizer": "path/to/tokenizer.json", "texts": [str], "decode": [[int]]}
RESPONSE: {"version": str, "ids": [[int]] (add_special_tokens=True), "plain_ids": [[int]] (False),
           "decoded": [str] (skip_special_tokens=False), "decoded_skip": [str] (True),
           "stream": [stream(ids, False) for ids in request["decode"]],
    "stream_skip": [stream(ids, True) for ids in request["decode"]],
    "pieces": [[str]] (the pre-tokenizer alone on each text; absent without one),
           "stream", "stream_skip": [[str|null] | null] (DecodeStream.step per id of each "decode" list,
           skip_special_tokens False / True; null for a list on which DecodeStream raised)}
"""
import json
import sys

import tokenizers

def stream(ids, skip):
    from tokenizers.decoders import DecodeStream
    decoder = DecodeStream(skip_special_tokens=skip)
    try:
        return [decoder.step(tok, i) for i in ids]
    except Exception:
        return None


request = json.load(open(sys.argv[1], encoding="utf-8"))
tok = tokenizers.Tokenizer.from_file(request["tokenizer"])
texts = request["texts"]
json.dump({
    "version": tokenizers.__version__,
    "ids": [e.ids for e in tok.encode_batch(texts, add_special_tokens=True)],
    "plain_ids": [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)],
    "decoded": [tok.decode(ids, skip_special_tokens=False) for ids in request["decode"]],
    "decoded_skip": [tok.decode(ids, skip_special_tokens=True) for ids in request["decode"]],
    "stream": [stream(ids, False) for ids in request["decode"]],
    "stream_skip": [stream(ids, True) for ids in request["decode"]],
    "pieces": [[p for p, _ in tok.pre_tokenizer.pre_tokenize_str(t)] for t in texts] if tok.pre_tokenizer else None,
}, sys.stdout, ensure_ascii=True)
