#!/usr/bin/env python3
"""Checks Baton's GGUF converter (Sources/BatonEngine/Resources/fetch_model.py --gguf) on a small
qwen2 GGUF written here: one layer, hidden 256, Q8_0 embeddings, Q4_K / Q6_K / F16 weights with
random blocks, F32 norms and q/k/v biases, a byte-level BPE vocabulary with ChatML specials.
Every converted tensor (written as f32) must equal a dequantisation written here from the GGUF
block layouts (ggml-quants.c: dequantize_row_q8_0 / _q4_K / _q6_K), which is also cross-checked
against the `gguf` package's. Also checks config.json and the tokenizer files.

  python3 scripts/check_gguf_conversion.py OUTDIR    (exit 0: all equal; 77: gguf/numpy missing)

Run by Tests/BatonEngineTests/GGUFConversionTests, which then loads OUTDIR/model's tokenizer in Baton.
"""
import json, os, subprocess, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
tools = os.path.join(cache, "baton", "models", ".fetch-tools")  # where the fetch script puts gguf and numpy
sys.path.insert(0, tools)
try:
    import numpy as np
    import gguf
    from gguf.quants import dequantize
except ImportError as error:
    print(f"skip: {error}", file=sys.stderr)
    sys.exit(77)

HIDDEN, HEADS, KV_HEADS, FFN = 256, 4, 1, 256
rng = np.random.default_rng(19)


def f16_bytes(values):
    return np.asarray(values, dtype=np.float16).view(np.uint8).reshape(-1, 2)


def random_blocks(kind, rows, cols):
    """Random blocks with finite, modest scales: uint8 [rows, bytes per row]."""
    block, size = gguf.GGML_QUANT_SIZES[kind]
    n = rows * cols // block
    raw = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    if kind == gguf.GGMLQuantizationType.Q8_0:
        raw[:, 0:2] = f16_bytes(rng.uniform(0.001, 0.02, n))
    elif kind == gguf.GGMLQuantizationType.Q4_K:
        raw[:, 0:2] = f16_bytes(rng.uniform(0.001, 0.02, n))
        raw[:, 2:4] = f16_bytes(rng.uniform(0.001, 0.02, n))
    elif kind == gguf.GGMLQuantizationType.Q6_K:
        raw[:, 208:210] = f16_bytes(rng.uniform(0.0005, 0.005, n))
    return raw.reshape(rows, -1)


def scale_min_k4(j, s):
    if j < 4:
        return s[:, j] & 63, s[:, j + 4] & 63
    return (s[:, j + 4] & 0xF) | ((s[:, j - 4] >> 6) << 4), (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)


def reference_dequantize(kind, raw, rows, cols):
    """Float32 [rows, cols] from the block layouts of ggml-quants.c."""
    if kind == gguf.GGMLQuantizationType.F16:
        return raw.view(np.float16).astype(np.float32).reshape(rows, cols)
    block, size = gguf.GGML_QUANT_SIZES[kind]
    b = raw.reshape(-1, size)
    y = np.zeros((b.shape[0], block), dtype=np.float32)
    if kind == gguf.GGMLQuantizationType.Q8_0:
        d = b[:, 0:2].copy().view(np.float16).astype(np.float32)
        y = d * b[:, 2:].view(np.int8).astype(np.float32)
    elif kind == gguf.GGMLQuantizationType.Q4_K:
        d = b[:, 0:2].copy().view(np.float16).astype(np.float32)[:, 0]
        dmin = b[:, 2:4].copy().view(np.float16).astype(np.float32)[:, 0]
        scales, qs = b[:, 4:16].astype(np.int32), b[:, 16:144].astype(np.int32)
        for chunk in range(4):
            q = qs[:, 32 * chunk:32 * chunk + 32]
            sc1, m1 = scale_min_k4(2 * chunk, scales)
            sc2, m2 = scale_min_k4(2 * chunk + 1, scales)
            y[:, 64 * chunk:64 * chunk + 32] = (d * sc1)[:, None] * (q & 0xF) - (dmin * m1)[:, None]
            y[:, 64 * chunk + 32:64 * chunk + 64] = (d * sc2)[:, None] * (q >> 4) - (dmin * m2)[:, None]
    elif kind == gguf.GGMLQuantizationType.Q6_K:
        ql, qh = b[:, 0:128].astype(np.int32), b[:, 128:192].astype(np.int32)
        sc = b[:, 192:208].view(np.int8).astype(np.float32)
        d = b[:, 208:210].copy().view(np.float16).astype(np.float32)[:, 0]
        for half in range(2):
            l_, h_, s_ = ql[:, 64 * half:], qh[:, 32 * half:], sc[:, 8 * half:]
            for l in range(32):
                i = l // 16
                q1 = ((l_[:, l] & 0xF) | ((h_[:, l] >> 0 & 3) << 4)) - 32
                q2 = ((l_[:, l + 32] & 0xF) | ((h_[:, l] >> 2 & 3) << 4)) - 32
                q3 = ((l_[:, l] >> 4) | ((h_[:, l] >> 4 & 3) << 4)) - 32
                q4 = ((l_[:, l + 32] >> 4) | ((h_[:, l] >> 6 & 3) << 4)) - 32
                base = 128 * half
                y[:, base + l] = d * s_[:, i] * q1
                y[:, base + l + 32] = d * s_[:, i + 2] * q2
                y[:, base + l + 64] = d * s_[:, i + 4] * q3
                y[:, base + l + 96] = d * s_[:, i + 6] * q4
    return y.reshape(rows, cols)


def byte_level_alphabet():
    """GPT-2's bytes_to_unicode, in byte order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def main(out):
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "tiny-qwen2.gguf")
    Q = gguf.GGMLQuantizationType
    tokens = byte_level_alphabet()
    merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a"]
    tokens += ["Ġt", "he", "Ġthe", "in", "Ġa"]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens += specials
    vocab = len(tokens)
    token_types = [1] * (vocab - 3) + [3, 3, 3]
    template = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
                "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    writer = gguf.GGUFWriter(path, "qwen2")
    writer.add_context_length(4096)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(1)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(1e6)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(vocab - 3)
    writer.add_eos_token_id(vocab - 1)
    writer.add_pad_token_id(vocab - 3)
    writer.add_add_bos_token(False)
    writer.add_chat_template(template)
    head_dim = HIDDEN // HEADS
    plan = [  # (GGUF name, HF name, type, rows, cols)
        ("token_embd.weight", "model.embed_tokens.weight", Q.Q8_0, vocab, HIDDEN),
        ("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight", Q.Q4_K, HIDDEN, HIDDEN),
        ("blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj.weight", Q.F16, KV_HEADS * head_dim, HIDDEN),
        ("blk.0.attn_v.weight", "model.layers.0.self_attn.v_proj.weight", Q.Q6_K, KV_HEADS * head_dim, HIDDEN),
        ("blk.0.attn_output.weight", "model.layers.0.self_attn.o_proj.weight", Q.Q6_K, HIDDEN, HIDDEN),
        ("blk.0.ffn_gate.weight", "model.layers.0.mlp.gate_proj.weight", Q.Q4_K, FFN, HIDDEN),
        ("blk.0.ffn_up.weight", "model.layers.0.mlp.up_proj.weight", Q.Q4_K, FFN, HIDDEN),
        ("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight", Q.Q6_K, HIDDEN, FFN),
        ("output.weight", "lm_head.weight", Q.Q6_K, vocab, HIDDEN),
    ]
    expected = {}
    for name, hf, kind, rows, cols in plan:
        if kind == Q.F16:
            values = rng.normal(0, 0.05, (rows, cols)).astype(np.float16)
            writer.add_tensor(name, values)
            raw = values.view(np.uint8)
        else:
            raw = random_blocks(kind, rows, cols)
            writer.add_tensor(name, raw, raw_dtype=kind)
        reference = reference_dequantize(kind, raw, rows, cols)
        package = dequantize(raw, kind).reshape(rows, cols).astype(np.float32)
        assert np.array_equal(reference, package), f"{name}: the spec dequantisation differs from gguf's"
        expected[hf] = reference
    for name, hf, n in [("blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight", HIDDEN),
                        ("blk.0.ffn_norm.weight", "model.layers.0.post_attention_layernorm.weight", HIDDEN),
                        ("output_norm.weight", "model.norm.weight", HIDDEN),
                        ("blk.0.attn_q.bias", "model.layers.0.self_attn.q_proj.bias", HIDDEN),
                        ("blk.0.attn_k.bias", "model.layers.0.self_attn.k_proj.bias", KV_HEADS * head_dim),
                        ("blk.0.attn_v.bias", "model.layers.0.self_attn.v_proj.bias", KV_HEADS * head_dim)]:
        values = rng.normal(1 if "norm" in name else 0, 0.1, n).astype(np.float32)
        writer.add_tensor(name, values)
        expected[hf] = values
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    model = os.path.join(out, "model")
    script = os.path.join(root, "Sources/BatonEngine/Resources/fetch_model.py")
    # The converter finds gguf and numpy where this script did (no pip install next to OUTDIR).
    python_path = os.pathsep.join(p for p in [tools, os.environ.get("PYTHONPATH")] if p)
    subprocess.check_call([sys.executable, script, model, "--gguf", path, "--dtype", "f32"],
                          env=dict(os.environ, PYTHONPATH=python_path))
    with open(os.path.join(model, "model.safetensors"), "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    assert set(header) == set(expected), f"tensors {sorted(set(header) ^ set(expected))} differ"
    for name, info in header.items():
        begin, end = info["data_offsets"]
        got = np.frombuffer(data[begin:end], dtype=np.float32).reshape(info["shape"])
        assert info["dtype"] == "F32" and np.array_equal(got, expected[name]), f"{name}: converted values differ"
    config = json.load(open(os.path.join(model, "config.json")))
    want = {"model_type": "qwen2", "hidden_size": HIDDEN, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
            "intermediate_size": FFN, "num_hidden_layers": 1, "vocab_size": vocab, "tie_word_embeddings": False,
            "rope_theta": 1e6, "eos_token_id": vocab - 1, "max_position_embeddings": 4096}
    for key, value in want.items():
        assert config[key] == value, f"config.json {key}: {config[key]} != {value}"
    tokenizer_config = json.load(open(os.path.join(model, "tokenizer_config.json")))
    assert tokenizer_config["chat_template"] == template and tokenizer_config["eos_token"] == "<|im_end|>"
    print(f"ok: {len(header)} tensors equal the block-layout dequantisation (Q8_0, Q4_K, Q6_K, F16, F32)")


if __name__ == "__main__":
    main(sys.argv[1])
