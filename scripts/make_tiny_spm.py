#!/usr/bin/env python3
"""Build the small SentencePiece-style BPE tokenizers that Baton's tokenizer tests use.

Usage: python3 scripts/make_tiny_spm.py [OUT_DIR]   (default Tests/Fixtures)

Writes OUT_DIR/tiny-spm/tokenizer.json: the Llama-2 / Mistral layout (normalizer
Prepend("▁") + Replace(" " -> "▁"), no pre-tokenizer, BPE with byte_fallback and <0xNN> tokens,
decoder Replace + ByteFallback + Fuse + Strip, post-processor "<s> $A"), and
OUT_DIR/tiny-spm-metaspace/tokenizer.json: the newer layout of the same model (Metaspace
pre-tokenizer with prepend_scheme "first", split false, and the Metaspace decoder).
OUT_DIR/tiny-spm-metaspace-split/tokenizer.json: the same model with the older Metaspace
layout (prepend_scheme "always", split on "▁") and the Llama-2 decoder chain.
OUT_DIR/tiny-gpt2/tokenizer.json: a GPT-2-style byte-level BPE (Digits + ByteLevel with
the GPT-2 regex and add_prefix_space, NFKC normalizer) with added tokens that use lstrip,
rstrip, single_word and normalized, to exercise those rules.
OUT_DIR/tiny-regex/tokenizer.json: byte-level BPE whose pre-tokenizer is a Sequence of Split
regexes in the style of DeepSeek's (\p{P}, \p{S}, \p{M}, CJK ranges), which Baton matches through
its general regex path rather than a hand-written matcher.
Deterministic: trained with `tokenizers` on the corpus below; no download.
"""
import json
import os
import sys

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello world! How are you doing today? I'm fine, thanks.",
    "Long-context inference splits a sequence across hosts and passes compressed blocks.",
    "def main():\n    print('hello')\n    return 0\n",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 2024 3.14159",
    "café naïve résumé straße über",
    "Привет мир",
    "  indented   text\twith\ttabs\nand newlines\r\n",
] * 20

SPECIALS = ["<unk>", "<s>", "</s>"]


def train():
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=[], limit_alphabet=60, show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return json.loads(tok.to_str())


def llama2_layout(trained):
    learned = sorted(trained["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for token, _ in learned:
        if token not in vocab:
            vocab[token] = len(vocab)
    added = [
        {"id": vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for s in SPECIALS
    ]
    bos = {"SpecialToken": {"id": "<s>", "type_id": 0}}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, bos, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [vocab["<s>"]], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [" ".join(m) if isinstance(m, list) else m
                                             for m in trained["model"]["merges"]]},
    }


def metaspace_split_layout(llama2):
    """Older Metaspace files: prepend always, split on ▁, the Llama-2 decoder chain."""
    t = json.loads(json.dumps(llama2))
    t["normalizer"] = None
    t["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}
    return t


def metaspace_layout(llama2):
    t = json.loads(json.dumps(llama2))
    t["normalizer"] = None
    t["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    t["decoder"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    t["model"]["merges"] = [m.split(" ") for m in t["model"]["merges"]]  # the newer [a, b] form
    return t


def gpt2_layout():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer=trainer)
    tok.add_tokens([
        AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True),
        AddedToken("[SEP]", lstrip=False, rstrip=True, normalized=False, special=True),
        AddedToken("hello", single_word=True, normalized=True),
        AddedToken("ｆｕｌｌ", normalized=True),
    ])
    return json.loads(tok.to_str())


def regex_layout():
    from tokenizers import Regex
    splits = [
        r"\p{N}{1,3}",
        r"[一-龥\u3040-ゟ゠-ヿ]+",
        r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    ]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(r), behavior="isolated", invert=False) for r in splits]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<｜begin▁of▁sentence｜>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return json.loads(tok.to_str())


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures"
    llama2 = llama2_layout(train())
    for name, data in [("tiny-spm", llama2), ("tiny-spm-metaspace", metaspace_layout(llama2)),
                       ("tiny-spm-metaspace-split", metaspace_split_layout(llama2)),
                       ("tiny-gpt2", gpt2_layout()), ("tiny-regex", regex_layout())]:
        text = json.dumps(data, ensure_ascii=False, indent=1)
        Tokenizer.from_str(text)  # must load in tokenizers itself
        os.makedirs(os.path.join(out, name), exist_ok=True)
        with open(os.path.join(out, name, "tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
