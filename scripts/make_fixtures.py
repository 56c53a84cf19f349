#!/usr/bin/env python3
"""Generate Baton's reference test fixtures.

Usage:
    python3 scripts/make_fixtures.py [OUT_DIR] [--tokenizers-only]

OUT_DIR defaults to Tests/Fixtures. Writes:

    OUT_DIR/tiny-llama/   Llama-3-style tokenizer + tiny random LlamaForCausalLM
                          (bf16 weights, sharded safetensors, llama3 rope scaling,
                          legacy "rope_scaling"/"rope_theta"/"torch_dtype" config keys)
    OUT_DIR/tiny-qwen2/   Qwen2-style tokenizer + tiny random Qwen2ForCausalLM
                          (fp32 weights, single model.safetensors, tied embeddings,
                          config.json exactly as transformers 5 writes it: "rope_parameters", "dtype")
    OUT_DIR/<model>/expected.json   reference tokenizer ids, fp32 logits, greedy generations,
                                    chat-template renderings (schema: Tests/Fixtures/README.md)

Everything is deterministic: tokenizers are trained on a corpus embedded below, weights are
drawn from numpy's PCG64 generator with fixed seeds (not torch's RNG, so the weights do not
depend on the torch version), and the reference forward pass runs on CPU in float32 with the
eager attention implementation.

--tokenizers-only skips everything that needs torch (model weights, logits, generation); it
still writes tokenizer files and the tokenizer/chat-template parts of expected.json. It is
meant for checking the tokenizer half of this script on machines without torch.
"""

from __future__ import annotations

import base64
import copy
import traceback
import hashlib
import json
import math
import os
import platform
import shutil
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only: reference numbers must not depend on a GPU
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np
import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

# ----------------------------------------------------------------------------------------------
# Constants mirroring the real model families
# ----------------------------------------------------------------------------------------------

LLAMA3_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

BPE_VOCAB_SIZE = 1000  # 256 byte symbols + 744 merges; added tokens get ids 1000+
MODEL_VOCAB_SIZE = 1024  # embedding rows; >= tokenizer size, padded like real checkpoints

LLAMA_SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2.5 ships <tool_call> / </tool_call> as added tokens with special=false; mirror that so the
# added-token matcher is exercised for non-special tokens too.
QWEN_NONSPECIAL_ADDED = ["<tool_call>", "</tool_call>"]

# Chat templates: verbatim from meta-llama/Meta-Llama-3-8B-Instruct and Qwen/Qwen2-7B-Instruct.
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
QWEN2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CHAT_MESSAGES = [
    {"role": "system", "content": "You are a concise assistant. Answer in one sentence."},
    {"role": "user", "content": "What is the capital of France? Réponds aussi en français, s'il te plaît."},
]

LOGIT_PROMPTS = [
    "The quick brown fox jumps over the lazy dog.",
    "for i in range(10):\n    print(i)  # naïve café, 12,50 € 🚀",
]
MAX_NEW_TOKENS = 32

# ----------------------------------------------------------------------------------------------
# Training corpus (English prose, code, numbers, punctuation, multilingual text, emoji)
# ----------------------------------------------------------------------------------------------

CORPUS = [
    # English prose
    """The quick brown fox jumps over the lazy dog. The five boxing wizards jump quickly.
It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of
foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light,
it was the season of Darkness, it was the spring of hope, it was the winter of despair.
I don't think they'll come; we're not sure, and you've said it's fine, but I'd rather wait. She's here.
Language models predict the next token given the previous tokens. A tokenizer splits text into
pieces, and the model assigns a probability to every piece in its vocabulary. Greedy decoding picks
the most likely token at each step, while sampling draws from the distribution with a temperature.
Swift is a general-purpose programming language built using a modern approach to safety, performance,
and software design patterns. The engine loads weights from safetensors files and runs attention.
Once upon a time, in a small village by the sea, there lived an old fisherman and his wife.
Every morning he went out in his boat, and every evening he came home with the day's catch.
"Where are you going?" she asked. "To the market," he replied, "and then to the harbour."
Questions? Answers! Lists: apples, oranges, pears; numbers: one, two, three... and so on.
THE END. Chapter 1: Introduction. Section 2.3 — Results (see Table 4). Email: someone@example.com
Visit https://example.org/path?query=value&other=42#fragment for more information.
""",
    # Code
    """import numpy as np
from typing import List, Optional

def fibonacci(n: int) -> int:
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)

class Tokenizer:
    def __init__(self, vocab: dict[str, int]) -> None:
        self.vocab = vocab
        self.inverse = {v: k for k, v in vocab.items()}

    def encode(self, text: str) -> List[int]:
        return [self.vocab[t] for t in text.split() if t in self.vocab]

for i in range(10):
    print(f"step {i}: loss={0.5 ** i:.4f}")

struct Config: Codable {
    let hiddenSize: Int
    let numLayers: Int
    var ropeTheta: Double = 500000.0
}

func softmax(_ x: [Float]) -> [Float] {
    let m = x.max() ?? 0
    let e = x.map { exp($0 - m) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
}

let json = "{\\"key\\": [1, 2, 3], \\"nested\\": {\\"a\\": null, \\"b\\": true}}"
if (a && b) || (!c && d != e) { x += 1; y -= 2; z *= 3; w /= 4; }
#include <stdio.h>
int main(void) { printf("Hello, world!\\n"); return 0; }
SELECT name, COUNT(*) FROM users WHERE age >= 21 GROUP BY name ORDER BY 2 DESC;
<html><body><p class="note">Hello &amp; welcome</p></body></html>
$ git commit -m "fix: handle \\r\\n line endings" && git push origin main
""",
    # Numbers and punctuation
    """0 1 2 3 4 5 6 7 8 9 10 11 12 100 256 1000 1024 2048 4096 65536 1234567890 3.14159 2.71828
1,000,000 and 12.5% of $1,234.56 on 2024-06-30 at 12:34:56; phone +1 (555) 123-4567; v1.2.3
!!! ??? ... --- *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}} <<< >>> ||| ~~~ ``` '''
"quoted" 'single' «guillemets» „Anführungszeichen“ “curly” ‘quotes’ — – … • · ° ± × ÷ ≤ ≥ ≠ ≈ ∞ → ←
""",
    # Multilingual
    """Le café est très bon. Où est la bibliothèque ? Ça va très bien, merci ! Élève, garçon, naïve, cœur.
Die Straße ist schön. Übermäßig große Äpfel schmecken süß. Fußgängerübergänge sind wichtig.
El niño comió una manzana. ¿Dónde está la estación? ¡Qué día tan bonito! Mañana será otro día.
Português: ação, coração, não, pão. Italiano: perché, città, così. Polski: zażółć gęślą jaźń.
Русский язык: Привет, как дела? Москва — столица России. Ελληνικά: Καλημέρα κόσμε.
中文：你好，世界！今天天气很好。我们一起学习机器学习和自然语言处理。
日本語：こんにちは、世界。東京は日本の首都です。カタカナとひらがな。
한국어: 안녕하세요, 세계! 서울은 한국의 수도입니다.
العربية: مرحبا بالعالم. اللغة العربية جميلة جدا.
हिन्दी: नमस्ते दुनिया। עברית: שלום עולם. ไทย: สวัสดีชาวโลก Türkçe: İstanbul, ığdır, şeker.
""",
    # Emoji and symbols
    """Emoji: 😀 😃 😄 😁 😆 🎉 🚀 ❤️ 👍 👍🏽 🔥 ✨ 🌍 🐍 🦀 🍎 🇫🇷 🇯🇵 👨‍👩‍👧‍👦 🏳️‍🌈 👩🏻‍💻
Math: ∑ ∏ √ ∫ ∂ ∇ ∈ ∉ ⊂ ⊃ ∪ ∩ ∧ ∨ ¬ ∀ ∃ α β γ δ ε λ μ π σ φ ω Ω
Whitespace:\ttab\tseparated\tvalues\nline one\r\nline two\r\n\r\n    indented    text   with   runs
""",
]
# Repeat with small variations so frequent pairs dominate and training fills the vocabulary.
CORPUS_LINES = []
for k in range(3):
    for block in CORPUS:
        CORPUS_LINES.append(block if k == 0 else block.replace("  ", " " * (k + 2)))

# ----------------------------------------------------------------------------------------------
# Tokenizer test cases
# ----------------------------------------------------------------------------------------------

TOKENIZER_CASES = [
    ("empty", ""),
    ("single_space", " "),
    ("single_char", "a"),
    ("ascii_sentence", "The quick brown fox jumps over the lazy dog."),
    ("leading_space_words", " hello world"),
    ("mixed_case", "Hello HELLO hello hElLo"),
    ("contractions", "I'm sure you're right, but they'll say it's what we'd've done. DON'T, WON'T, She'S"),
    ("contractions_curly", "It’s a dog’s life, isn’t it?"),
    ("digits_long", "12345678901234567890"),
    ("digits_mixed", "v1.2.3 costs $1,234.56 on 2024-06-30 (99.9%)"),
    ("punctuation_run", "Wait... what?!?! ---> *** ((nested)) [[x]] {{y}} <<<>>>"),
    ("punct_newlines", "end.\n\n\nnext!!\n"),
    ("spaces_runs", "a  b   c    d     e"),
    ("trailing_spaces", "trailing   "),
    ("leading_spaces", "   leading"),
    ("only_spaces", "      "),
    ("tabs", "\tcol1\tcol2\t\tcol3\t"),
    ("newlines", "line1\nline2\n\nline4\n"),
    ("crlf", "line1\r\nline2\r\n\r\nline4"),
    ("mixed_whitespace", " \t \n \r\n  x \t\t y\n\n   "),
    ("code_python", "def f(x):\n    return x * 2  # double\n"),
    ("code_swift", "let xs: [Int] = (0..<10).map { $0 * $0 }\nprint(xs)"),
    ("json", '{"a": 1, "b": [true, false, null], "c": "d\\"e"}'),
    ("url_email", "https://example.org/a/b?c=d&e=f#g mail@example.com"),
    ("accents_nfc", "café naïve résumé Über straße"),
    ("accents_nfd", "cafe\u0301 nai\u0308ve re\u0301sume\u0301"),
    ("german_french", "Die Straße ist schön. Où est la bibliothèque ?"),
    ("cyrillic_greek", "Привет, мир! Καλημέρα κόσμε."),
    ("cjk_chinese", "你好，世界！今天天气很好。"),
    ("cjk_japanese", "こんにちは、世界。東京は日本の首都です。"),
    ("korean", "안녕하세요, 세계!"),
    ("arabic", "مرحبا بالعالم. اللغة العربية جميلة."),
    ("hindi_thai", "नमस्ते दुनिया। สวัสดีชาวโลก"),
    ("emoji_basic", "I love 🍎 and 🚀!! 😀😃😄"),
    ("emoji_skin_tone", "👍 👍🏽 👍🏿"),
    ("emoji_zwj_family", "family: 👨‍👩‍👧‍👦 coder: 👩🏻‍💻 flag: 🏳️‍🌈"),
    ("emoji_flags_vs16", "🇫🇷🇯🇵 ❤️ ✨"),
    ("rare_unicode", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u200b zero\u200bwidth \ufeffbom \u00a0nbsp"),
    ("llama_specials_in_text", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"),
    ("qwen_specials_in_text", "<|im_start|>user\nHi!<|im_end|>\n<|endoftext|>"),
    ("added_nonspecial_in_text", "call <tool_call>{\"name\": \"f\"}</tool_call> done"),
    ("special_like_not_special", "<|not_a_special|> <|eot_id <|im_end"),
    ("long_mixed", "Résumé: 3 years @ ACME (2019–2022), 日本語 OK, emoji 🚀; code `x += 1`\r\n\tEnd."),
]

# ----------------------------------------------------------------------------------------------
# Tokenizer construction
# ----------------------------------------------------------------------------------------------


def _split_pretokenizer(regex: str, byte_level_trim_offsets: bool) -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=byte_level_trim_offsets, use_regex=False),
        ]
    )


def build_tokenizer(family: str) -> Tokenizer:
    """Train a byte-level BPE with the family's pipeline, then add the family's special tokens."""
    tok = Tokenizer(models.BPE())
    if family == "llama":
        tok.normalizer = None
        tok.pre_tokenizer = _split_pretokenizer(LLAMA3_SPLIT_REGEX, True)
    elif family == "qwen2":
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = _split_pretokenizer(QWEN2_SPLIT_REGEX, False)
    else:
        raise ValueError(family)

    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        min_frequency=1,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS_LINES, trainer=trainer)

    # Rebuild from JSON so every field of the BPE model is explicit and matches real checkpoints
    # (Llama-3's tokenizer.json has "ignore_merges": true; Qwen2's has false).
    data = json.loads(tok.to_str())
    model = data["model"]
    model["dropout"] = None
    model["unk_token"] = None
    model["continuing_subword_prefix"] = None
    model["end_of_word_suffix"] = None
    model["fuse_unk"] = False
    model["byte_fallback"] = False
    model["ignore_merges"] = family == "llama"
    if family == "llama":
        data["post_processor"] = None  # set below, once the BOS id is known
        data["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    else:
        data["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
        data["decoder"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    tok = Tokenizer.from_str(json.dumps(data))

    if family == "llama":
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in LLAMA_SPECIALS])
        bos = "<|begin_of_text|>"
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.Sequence(
            [
                processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
                processors.TemplateProcessing(
                    single=f"{bos}:0 $A:0",
                    pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                    special_tokens=[(bos, bos_id)],
                ),
            ]
        )
    else:
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIALS])
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN_NONSPECIAL_ADDED])
    return tok


def tokenizer_config(family: str, tok: Tokenizer) -> dict:
    """tokenizer_config.json in the shape the real checkpoints ship."""
    added = {}
    for tid, at in sorted(tok.get_added_tokens_decoder().items()):
        added[str(tid)] = {
            "content": at.content,
            "lstrip": at.lstrip,
            "normalized": at.normalized,
            "rstrip": at.rstrip,
            "single_word": at.single_word,
            "special": at.special,
        }
    if family == "llama":
        return {
            "added_tokens_decoder": added,
            "bos_token": "<|begin_of_text|>",
            "chat_template": LLAMA3_CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": True,
            "eos_token": "<|eot_id|>",
            "model_input_names": ["input_ids", "attention_mask"],
            "model_max_length": 2048,
            "tokenizer_class": "PreTrainedTokenizerFast",
        }
    return {
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": QWEN2_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 2048,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def family_ids(family: str, tok: Tokenizer) -> dict:
    t = tok.token_to_id
    if family == "llama":
        return {
            "bos_token_id": t("<|begin_of_text|>"),
            "eos_token_id": t("<|eot_id|>"),  # config.json (instruct-style)
            "generation_eos_token_ids": [t("<|end_of_text|>"), t("<|eot_id|>")],  # generation_config.json
            "pad_token_id": None,
        }
    return {
        "bos_token_id": t("<|endoftext|>"),  # Qwen2 config.json lists it, but the tokenizer adds no BOS
        "eos_token_id": t("<|im_end|>"),
        "generation_eos_token_ids": [t("<|im_end|>"), t("<|endoftext|>")],
        "pad_token_id": t("<|endoftext|>"),
    }


def generation_config_dict(family: str, ids: dict) -> dict:
    """generation_config.json like the real instruct checkpoints (sampling defaults included)."""
    if family == "llama":
        return {
            "bos_token_id": ids["bos_token_id"],
            "do_sample": True,
            "eos_token_id": ids["generation_eos_token_ids"],
            "max_length": 2048,
            "temperature": 0.6,
            "top_p": 0.9,
        }
    return {
        "bos_token_id": ids["bos_token_id"],
        "do_sample": True,
        "eos_token_id": ids["generation_eos_token_ids"],
        "pad_token_id": ids["pad_token_id"],
        "repetition_penalty": 1.05,
        "temperature": 0.7,
        "top_k": 20,
        "top_p": 0.8,
    }


def model_config_summary(family: str) -> dict:
    """What a config parser should extract from <model_dir>/config.json (for Swift config tests)."""
    d = dict(MODEL_DIMS)
    d["vocab_size"] = MODEL_VOCAB_SIZE
    if family == "llama":
        d.update(
            model_type="llama",
            config_json_style="legacy: top-level rope_theta + rope_scaling{rope_type:llama3,...} + torch_dtype",
            rope=dict(LLAMA_ROPE),
            tie_word_embeddings=False,
            qkv_bias=False,
            weights_dtype="bfloat16",
            weight_files=["model.safetensors.index.json", "model-0000N-of-0000M.safetensors"],
        )
    else:
        d.update(
            model_type="qwen2",
            config_json_style="transformers 5: rope_parameters{rope_type:default, rope_theta} + dtype",
            rope={"rope_type": "default", "rope_theta": 1000000.0},
            tie_word_embeddings=True,
            qkv_bias=True,
            weights_dtype="float32",
            weight_files=["model.safetensors"],
        )
    return d


def write_json(path: str, obj, indent=2) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)
        f.write("\n")


def tokenizer_cases(tok: Tokenizer) -> list[dict]:
    out = []
    for name, text in TOKENIZER_CASES:
        ids = tok.encode(text, add_special_tokens=False).ids
        ids_sp = tok.encode(text, add_special_tokens=True).ids
        out.append(
            {
                "name": name,
                "text": text,
                "ids": ids,
                "ids_with_special": ids_sp,
                "decoded": tok.decode(ids, skip_special_tokens=False),
                "decoded_with_special": tok.decode(ids_sp, skip_special_tokens=False),
                "decoded_skip_special": tok.decode(ids_sp, skip_special_tokens=True),
            }
        )
    return out


def transformers_tokenizer_checks(model_dir: str, cases: list[dict]) -> tuple[dict, list]:
    """Load the tokenizer through transformers and record the chat template + any disagreement."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(model_dir)
    notes = []
    for c in cases:
        a = hf(c["text"], add_special_tokens=False)["input_ids"]
        b = hf(c["text"], add_special_tokens=True)["input_ids"]
        if a != c["ids"] or b != c["ids_with_special"]:
            notes.append(f"transformers {type(hf).__name__} ids differ from tokenizers for case {c['name']}")
        d = hf.decode(c["ids_with_special"])
        if d != c["decoded_with_special"]:
            c["decoded_transformers"] = d
    rendered = hf.apply_chat_template(CHAT_MESSAGES, add_generation_prompt=True, tokenize=False)
    ids = hf.apply_chat_template(CHAT_MESSAGES, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):  # transformers 5 may return a BatchEncoding
        ids = ids["input_ids"]
    ids = [int(i) for i in ids]
    chat = {
        "messages": CHAT_MESSAGES,
        "add_generation_prompt": True,
        "text": rendered,
        "ids": ids,
        "tokenizer_class": type(hf).__name__,
    }
    return chat, notes


# ----------------------------------------------------------------------------------------------
# Model construction (numpy weights -> transformers model)
# ----------------------------------------------------------------------------------------------

MODEL_DIMS = dict(
    hidden_size=64,
    intermediate_size=176,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
)

LLAMA_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 500000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}

INIT = {
    # std of N(0, std) for each kind of parameter; norms are 1 + N(0, std)
    "embed": 0.5,
    "lm_head": 0.3,
    "linear": 0.2,
    "bias": 0.2,
    "norm": 0.2,
}
PAD_ROW_SCALE = 0.05


def bf16_round(a: np.ndarray) -> np.ndarray:
    """Round float32 -> bfloat16 (round to nearest even), returned as float32."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def make_weights(param_shapes: dict[str, tuple], seed: int, bf16: bool, n_tokens: int) -> dict[str, np.ndarray]:
    """Random weights, drawn in sorted-name order from one PCG64 stream.

    Rows of embed_tokens / lm_head for ids >= n_tokens (the tokenizer's size) are padding, as in
    real checkpoints whose embedding is rounded up; they are scaled by PAD_ROW_SCALE so the model
    practically never predicts an id the tokenizer cannot decode.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(param_shapes):
        shape = param_shapes[name]
        if name.endswith("norm.weight"):
            w = 1.0 + INIT["norm"] * rng.standard_normal(shape)
        elif name.endswith(".bias"):
            w = INIT["bias"] * rng.standard_normal(shape)
        elif "embed_tokens" in name:
            w = INIT["embed"] * rng.standard_normal(shape)
        elif name.startswith("lm_head"):
            w = INIT["lm_head"] * rng.standard_normal(shape)
        else:
            w = INIT["linear"] * rng.standard_normal(shape)
        if "embed_tokens" in name or name.startswith("lm_head"):
            w[n_tokens:] *= PAD_ROW_SCALE
        w = w.astype(np.float32)
        out[name] = bf16_round(w) if bf16 else w
    return out


def param_shapes(family: str) -> dict[str, tuple]:
    d = MODEL_DIMS
    H, I, V = d["hidden_size"], d["intermediate_size"], MODEL_VOCAB_SIZE
    q = d["num_attention_heads"] * d["head_dim"]
    kv = d["num_key_value_heads"] * d["head_dim"]
    s = {"model.embed_tokens.weight": (V, H), "model.norm.weight": (H,)}
    if family == "llama":
        s["lm_head.weight"] = (V, H)
    for l in range(d["num_hidden_layers"]):
        p = f"model.layers.{l}."
        s[p + "input_layernorm.weight"] = (H,)
        s[p + "post_attention_layernorm.weight"] = (H,)
        s[p + "self_attn.q_proj.weight"] = (q, H)
        s[p + "self_attn.k_proj.weight"] = (kv, H)
        s[p + "self_attn.v_proj.weight"] = (kv, H)
        s[p + "self_attn.o_proj.weight"] = (H, q)
        if family == "qwen2":
            s[p + "self_attn.q_proj.bias"] = (q,)
            s[p + "self_attn.k_proj.bias"] = (kv,)
            s[p + "self_attn.v_proj.bias"] = (kv,)
        s[p + "mlp.gate_proj.weight"] = (I, H)
        s[p + "mlp.up_proj.weight"] = (I, H)
        s[p + "mlp.down_proj.weight"] = (H, I)
    return s


# ----------------------------------------------------------------------------------------------
# Independent numpy reference (float64) used as a sanity check of the transformers numbers
# ----------------------------------------------------------------------------------------------


def np_inv_freq(rope: dict, head_dim: int) -> np.ndarray:
    inv = 1.0 / (rope["rope_theta"] ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    if rope.get("rope_type", "default") == "llama3":
        factor, lo, hi = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
        old = rope["original_max_position_embeddings"]
        low_wl, high_wl = old / lo, old / hi
        wl = 2 * math.pi / inv
        scaled = np.where(wl > low_wl, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wl < high_wl) & ~(wl > low_wl)
        inv = np.where(medium, smoothed, scaled)
    return inv


def np_forward(w: dict[str, np.ndarray], ids: list[int], rope: dict, tied: bool) -> np.ndarray:
    d = MODEL_DIMS
    nh, nkv, hd, eps = d["num_attention_heads"], d["num_key_value_heads"], d["head_dim"], d["rms_norm_eps"]
    W = {k: v.astype(np.float64) for k, v in w.items()}
    T = len(ids)
    x = W["model.embed_tokens.weight"][ids]
    inv = np_inv_freq(rope, hd)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
    cos = np.concatenate([np.cos(ang)] * 2, axis=-1)[:, None, :]
    sin = np.concatenate([np.sin(ang)] * 2, axis=-1)[:, None, :]

    def rms(v, g):
        return v / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + eps) * g

    def rot(v):
        h = v.shape[-1] // 2
        return np.concatenate([-v[..., h:], v[..., :h]], axis=-1)

    mask = np.triu(np.full((T, T), -np.inf), k=1)
    for l in range(d["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms(x, W[p + "input_layernorm.weight"])
        q = h @ W[p + "self_attn.q_proj.weight"].T + W.get(p + "self_attn.q_proj.bias", 0)
        k = h @ W[p + "self_attn.k_proj.weight"].T + W.get(p + "self_attn.k_proj.bias", 0)
        v = h @ W[p + "self_attn.v_proj.weight"].T + W.get(p + "self_attn.v_proj.bias", 0)
        q, k, v = q.reshape(T, nh, hd), k.reshape(T, nkv, hd), v.reshape(T, nkv, hd)
        q = q * cos + rot(q) * sin
        k = k * cos + rot(k) * sin
        rep = nh // nkv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = np.einsum("hts,shd->thd", s, v).reshape(T, nh * hd)
        x = x + o @ W[p + "self_attn.o_proj.weight"].T
        h = rms(x, W[p + "post_attention_layernorm.weight"])
        g = h @ W[p + "mlp.gate_proj.weight"].T
        u = h @ W[p + "mlp.up_proj.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * u) @ W[p + "mlp.down_proj.weight"].T
    x = rms(x, W["model.norm.weight"])
    head = W["model.embed_tokens.weight"] if tied else W["lm_head.weight"]
    return x @ head.T


def np_greedy(w, ids, rope, tied, n):
    ids = list(ids)
    new = []
    for _ in range(n):
        nxt = int(np.argmax(np_forward(w, ids, rope, tied)[-1]))
        ids.append(nxt)
        new.append(nxt)
    return new


# ----------------------------------------------------------------------------------------------
# Torch part
# ----------------------------------------------------------------------------------------------


def f32_b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def legacy_llama_config(cfg: dict) -> dict:
    """Rewrite transformers-5 config keys into the pre-v5 layout real Llama 3.x checkpoints use."""
    out = {}
    for k, v in cfg.items():
        if k == "rope_parameters":
            rp = dict(v)
            out["rope_theta"] = rp.pop("rope_theta")
            out["rope_scaling"] = dict(sorted(rp.items()))
        elif k == "dtype":
            out["torch_dtype"] = v
        else:
            out[k] = v
    return dict(sorted(out.items()))


def build_and_reference(family: str, model_dir: str, tok: Tokenizer, ids_info: dict, report: dict) -> dict:
    import torch
    import transformers
    from transformers import GenerationConfig

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    dims = dict(MODEL_DIMS)
    common = dict(
        vocab_size=MODEL_VOCAB_SIZE,
        bos_token_id=ids_info["bos_token_id"],
        eos_token_id=ids_info["eos_token_id"],
        pad_token_id=None,  # real Llama-3 / Qwen2 config.json have none; Qwen2 keeps it in generation_config.json
        **dims,
    )
    if family == "llama":
        config = transformers.LlamaConfig(
            rope_parameters=dict(LLAMA_ROPE), tie_word_embeddings=False, attention_bias=False, **common
        )
        cls = transformers.LlamaForCausalLM
        save_dtype = torch.bfloat16
        rope = LLAMA_ROPE
        tied = False
        seed = 1234
    else:
        config = transformers.Qwen2Config(
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
            tie_word_embeddings=True,
            use_sliding_window=False,
            **common,
        )
        cls = transformers.Qwen2ForCausalLM
        save_dtype = torch.float32
        rope = {"rope_type": "default", "rope_theta": 1000000.0}
        tied = True
        seed = 5678

    model = cls(config).to(torch.float32)
    shapes = param_shapes(family)
    got = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert got == shapes, f"parameter layout mismatch:\n{got}\n{shapes}"
    weights = make_weights(
        shapes, seed, bf16=(save_dtype == torch.bfloat16), n_tokens=tok.get_vocab_size(with_added_tokens=True)
    )
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(weights[n]))
    if tied:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    model = model.to(save_dtype)
    model.generation_config = GenerationConfig(**generation_config_dict(family, ids_info))

    if family == "llama":
        model.save_pretrained(model_dir, max_shard_size="200KB")
    else:
        model.save_pretrained(model_dir)
    written = json.load(open(os.path.join(model_dir, "config.json")))
    report["config_json_as_written_by_transformers"] = written
    if family == "llama":
        write_json(os.path.join(model_dir, "config.json"), legacy_llama_config(written))

    # Reference: reload from disk (bf16 -> fp32 upcast for llama), CPU, fp32, eager attention.
    ref = cls.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    report["reloaded_rope_parameters"] = dict(ref.config.rope_parameters)
    report["reloaded_dtype"] = str(next(ref.parameters()).dtype)
    reloaded = {n: p.detach().numpy().copy() for n, p in ref.named_parameters()}
    if set(reloaded) != set(weights):
        report.setdefault("notes", []).append(f"reloaded parameter names differ: {sorted(set(reloaded) ^ set(weights))}")
    for n in weights:
        if n in reloaded and np.abs(reloaded[n] - weights[n]).max() != 0.0:
            report.setdefault("notes", []).append(f"weight {n} changed across save/load")
    weights = {**weights, **reloaded}  # numpy cross-checks use exactly what transformers loaded

    result = {"logits": [], "generation": []}
    for pi, text in enumerate(LOGIT_PROMPTS):
        ids = tok.encode(text, add_special_tokens=True).ids
        inp = torch.tensor([ids], dtype=torch.long)
        with torch.no_grad():
            logits = ref(input_ids=inp).logits[0].float().numpy()
        npref = np_forward(weights, ids, rope, tied)
        np_diff = float(np.abs(npref - logits).max())
        result["logits"].append(
            {
                "name": f"prompt{pi}",
                "text": text,
                "input_ids": ids,
                "shape": list(logits.shape),
                "dtype": "float32-le",
                "data_b64": f32_b64(logits),
                "argmax": [int(i) for i in logits.argmax(-1)],
                "max_abs": float(np.abs(logits).max()),
                "numpy_float64_max_abs_diff": np_diff,
                **(
                    {"numpy_without_rope_scaling_max_abs_diff": float(np.abs(
                        np_forward(weights, ids, {"rope_theta": rope["rope_theta"]}, tied) - logits).max())}
                    if rope.get("rope_type") == "llama3" else {}
                ),
            }
        )

        # Primary greedy reference: full recomputation each step (no KV cache), EOS ignored, so
        # exactly MAX_NEW_TOKENS tokens; top-2 margins tell how close each argmax was.
        seq = list(ids)
        new_ids, margins = [], []
        with torch.no_grad():
            for _ in range(MAX_NEW_TOKENS):
                last = ref(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1].float()
                top2 = torch.topk(last, 2).values
                nxt = int(last.argmax())
                margins.append(float(top2[0] - top2[1]))
                seq.append(nxt)
                new_ids.append(nxt)
        # Cross-check 1: model.generate (KV cache) with the checkpoint's own EOS ids, greedy, and
        # sampling knobs neutralised (transformers 5 fills unset GenerationConfig fields from
        # generation_config.json, so they must be set explicitly: Qwen2's repetition_penalty=1.05!).
        gen = {}
        try:
            gcfg = copy.deepcopy(ref.generation_config)
            gcfg.do_sample = False
            gcfg.temperature = 1.0
            gcfg.top_p = 1.0
            gcfg.top_k = 50
            gcfg.repetition_penalty = 1.0
            gcfg.max_new_tokens = MAX_NEW_TOKENS
            gcfg.eos_token_id = ids_info["generation_eos_token_ids"]
            if gcfg.pad_token_id is None:
                gcfg.pad_token_id = ids_info["generation_eos_token_ids"][0]
            with torch.no_grad():
                out = ref.generate(input_ids=inp, attention_mask=torch.ones_like(inp), generation_config=gcfg)
            g_ids = [int(i) for i in out[0, len(ids):]]
            gen = {"generate_new_ids": g_ids, "generate_matches_prefix": g_ids == new_ids[: len(g_ids)]}
        except Exception as e:  # recorded, not fatal: new_ids above is the reference
            gen = {"generate_error": repr(e)}
            report.setdefault("notes", []).append(f"generate failed: {e!r}")
        # Cross-check 2: float64 numpy greedy.
        npg = np_greedy(weights, ids, rope, tied, MAX_NEW_TOKENS)
        eos = set(ids_info["generation_eos_token_ids"])
        first_eos = next((i for i, t in enumerate(new_ids) if t in eos), None)
        result["generation"].append(
            {
                "name": f"prompt{pi}",
                "prompt_ids": ids,
                "max_new_tokens": MAX_NEW_TOKENS,
                "new_ids": new_ids,
                "text": tok.decode(new_ids, skip_special_tokens=False),
                "first_eos_index": first_eos,
                "top2_margins": margins,
                **gen,
                "matches_numpy_float64_greedy": npg == new_ids,
            }
        )
    return result


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def versions(with_torch: bool) -> dict:
    v = {"python": platform.python_version(), "tokenizers": tokenizers.__version__, "numpy": np.__version__}
    try:
        import transformers

        v["transformers"] = transformers.__version__
    except Exception:
        pass
    if with_torch:
        import torch

        v["torch"] = torch.__version__
    return v


def make_family(family: str, out_root: str, with_torch: bool) -> None:
    name = {"llama": "tiny-llama", "qwen2": "tiny-qwen2"}[family]
    model_dir = os.path.join(out_root, name)
    if os.path.isdir(model_dir):
        shutil.rmtree(model_dir)
    os.makedirs(model_dir)

    tok = build_tokenizer(family)
    # Determinism check: training twice must give the identical tokenizer.
    assert build_tokenizer(family).to_str() == tok.to_str(), "BPE training is not deterministic"
    assert tok.get_vocab_size(with_added_tokens=True) <= MODEL_VOCAB_SIZE
    tok.save(os.path.join(model_dir, "tokenizer.json"))
    write_json(os.path.join(model_dir, "tokenizer_config.json"), tokenizer_config(family, tok))
    specials = {
        "bos_token": "<|begin_of_text|>" if family == "llama" else None,
        "eos_token": "<|eot_id|>" if family == "llama" else "<|im_end|>",
    }
    if family == "qwen2":
        specials["pad_token"] = "<|endoftext|>"
        specials["additional_special_tokens"] = ["<|im_start|>", "<|im_end|>"]
    write_json(os.path.join(model_dir, "special_tokens_map.json"), specials)
    ids_info = family_ids(family, tok)

    report: dict = {}
    cases = tokenizer_cases(tok)
    chat, notes = transformers_tokenizer_checks(model_dir, cases)
    report["notes"] = notes

    expected = {
        "format_version": 1,
        "family": family,
        "model_dir": name,
        "generator": {
            "command": "python3 scripts/make_fixtures.py Tests/Fixtures",
            "versions": versions(with_torch),
        },
        "special_ids": ids_info,
        "config": model_config_summary(family),
        "tokenizer": {
            "vocab_size": tok.get_vocab_size(with_added_tokens=False),
            "vocab_size_with_added_tokens": tok.get_vocab_size(with_added_tokens=True),
            "added_tokens": {
                at.content: {"id": tid, "special": at.special}
                for tid, at in sorted(tok.get_added_tokens_decoder().items())
            },
            "sha256": sha256_file(os.path.join(model_dir, "tokenizer.json")),
            "cases": cases,
        },
        "chat_template": chat,
    }

    if with_torch:
        res = build_and_reference(family, model_dir, tok, ids_info, report)
        with open(os.path.join(model_dir, "generation_config.json")) as f:
            report["generation_config_json_as_written"] = json.load(f)
        expected["reference"] = {
            "weights_dtype_on_disk": "bfloat16" if family == "llama" else "float32",
            "compute_dtype": "float32",
            "device": "cpu",
            "attn_implementation": "eager",
            "note": (
                "weights loaded with from_pretrained(dtype=torch.float32): bf16 values upcast exactly to fp32"
                if family == "llama"
                else "fp32 weights, fp32 compute"
            ),
        }
        expected["logits"] = res["logits"]
        expected["generation"] = res["generation"]
    else:
        # Without torch, still write a generation_config.json so the tokenizer half is complete.
        gc = generation_config_dict(family, ids_info)
        write_json(os.path.join(model_dir, "generation_config.json"), gc)
    expected["generator_report"] = report
    write_json(os.path.join(model_dir, "expected.json"), expected)
    print(f"[{family}] wrote {model_dir}: " + ", ".join(sorted(os.listdir(model_dir))))
    for n in report.get("notes", []):
        print(f"[{family}] NOTE: {n}")


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if not a.startswith("--")]
    flags = {a for a in argv[1:] if a.startswith("--")}
    out_root = args[0] if args else "Tests/Fixtures"
    with_torch = "--tokenizers-only" not in flags
    os.makedirs(out_root, exist_ok=True)
    failed = []
    for family in ("llama", "qwen2"):
        try:
            make_family(family, out_root, with_torch)
        except Exception:
            traceback.print_exc()
            failed.append(family)
    if failed:
        print("FAILED:", failed)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
