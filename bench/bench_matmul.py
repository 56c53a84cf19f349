"""PyTorch baseline for `baton selftest --bench-gemm`: the same bf16 GEMMs, y = x @ W.T with W
[N, K] (Llama-3.1-8B projection and MLP shapes), at the same row counts, on the same GPU.
Median of 10 event-timed repeats of 10 launches each, after warm-up; inputs uniform in [-1, 1).

    python3 bench/bench_matmul.py --rows 4096,8192
"""
import argparse

import torch

from bench_sdpa import median_ms  # same folder: the same event-timed median as the attention baseline

# Launches between one pair of events, as in `baton selftest --bench-gemm`: the host's time to queue
# one launch stays hidden, as in a model's forward pass.
LAUNCHES_PER_TIMING = 10
SHAPES = [("q/o", 4096, 4096), ("k/v", 1024, 4096), ("qkv", 6144, 4096), ("gate/up", 14336, 4096),
          ("gate_up", 28672, 4096), ("down", 4096, 14336)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="4096,8192")
    args = parser.parse_args()
    for M in [int(r) for r in args.rows.split(",")]:
        for name, N, K in SHAPES:
            x = torch.rand(M, K, device="cuda", dtype=torch.bfloat16) * 2 - 1
            w = torch.rand(N, K, device="cuda", dtype=torch.bfloat16) * 2 - 1
            ms = median_ms(lambda: [torch.matmul(x, w.t()) for _ in range(LAUNCHES_PER_TIMING)], repeats=10)
            print(f"torch M {M:6d} {name:<8} N {N:6d} K {K:6d}: "
                  f"{2 * M * N * K * LAUNCHES_PER_TIMING / ms / 1e9:6.1f} TFLOP/s")


if __name__ == "__main__":
    main()
