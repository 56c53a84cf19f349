"""PyTorch baselines for Baton's attention kernel, run in the same call on the same GPU.

Causal scaled_dot_product_attention, 1 x heads x d bf16, through the FLASH_ATTENTION (FA2) and
CUDNN_ATTENTION backends. TFLOP/s with causal FLOPs = 4 * S * S * H * d / 2. Median of event-timed
repeats after warm-up; inputs uniform in [-1, 1) (never zeros).

    python3 bench/bench_sdpa.py --sizes 8192,32768,131072 [--heads 32 --head-dim 128]
"""
import argparse
import json

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F


def median_ms(fn, repeats):
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="8192,32768,131072")
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        shape = (1, args.heads, size, args.head_dim)
        q, k, v = (torch.rand(shape, device="cuda", dtype=torch.bfloat16) * 2 - 1 for _ in range(3))
        flops = 4 * size * size * args.heads * args.head_dim / 2
        repeats = 20 if size <= 8192 else 10 if size <= 32768 else 5
        for name, backend in [("FA2", SDPBackend.FLASH_ATTENTION), ("cuDNN", SDPBackend.CUDNN_ATTENTION)]:
            try:
                with sdpa_kernel(backend):
                    ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), repeats)
                line = f"torch {name:6s} causal S={size:6d} H={args.heads} d={args.head_dim}: {ms:9.3f} ms {flops / ms / 1e9:7.1f} TFLOP/s"
                results.append({"backend": name, "S": size, "ms": ms, "tflops": flops / ms / 1e9})
            except Exception as error:  # a backend missing on this build is reported, not fatal
                line = f"torch {name:6s} causal S={size:6d}: unavailable ({str(error).splitlines()[0][:120]})"
            print(line, flush=True)
        del q, k, v
        torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
