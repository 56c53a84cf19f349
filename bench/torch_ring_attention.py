#!/usr/bin/env python3
"""Ring attention over torch.distributed: the PyTorch baseline for Baton's Ring method.

  torchrun --nproc-per-node 2 bench/torch_ring_attention.py --tokens 32768,131072 [--check]

Each rank holds a contiguous block of S/W query, key and value rows (batch 1, causal, GQA-free
heads x head dim). The key/value block travels around the ring with asynchronous send/recv while
the rank attends to the block it holds: its own block causally, blocks of earlier ranks fully,
later ranks' blocks not at all. The partial results are merged with their log-sum-exp in fp32.
Attention runs through PyTorch's flash kernels (CUDA; the CPU flash path with gloo on machines
without GPUs). `--check` compares every rank's rows with single-process causal attention.
Prints the median time of `--runs` after one warm-up, measured on rank 0 between barriers.
"""
import argparse, os, statistics, time

import torch
import torch.distributed as dist


def partial_attention(q, k, v, causal, scale):
    """(out [1,H,S,d], lse [1,H,S] fp32) of q against one key block, through a flash kernel."""
    if q.is_cuda:
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention(q, k, v, 0.0, causal, False, scale=scale)[:2]
    else:
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, causal, scale=scale)[:2]
    return out.float(), lse.float()


def merge(out, lse, block_out, block_lse):
    """Exact merge of two partial results over disjoint keys (the stable sigmoid form)."""
    if out is None:
        return block_out, block_lse
    weight = torch.sigmoid(block_lse - lse).unsqueeze(-1)
    return out - weight * (out - block_out), lse - torch.nn.functional.logsigmoid(lse - block_lse)


def ring_attention(q, k, v, rank, world, scale):
    """Causal attention of this rank's q rows over all ranks' keys, passing K/V around the ring."""
    out = lse = None
    current_k, current_v = k, v
    for step in range(world):
        source = (rank - step) % world  # whose block this rank holds at this step
        requests = []
        if step < world - 1:  # start passing the block on before computing with it
            next_k, next_v = torch.empty_like(k), torch.empty_like(v)
            requests = [dist.isend(current_k, (rank + 1) % world), dist.isend(current_v, (rank + 1) % world),
                        dist.irecv(next_k, (rank - 1) % world), dist.irecv(next_v, (rank - 1) % world)]
        if source <= rank:
            out, lse = merge(out, lse, *partial_attention(q, current_k, current_v, source == rank, scale))
        for request in requests:
            request.wait()
        if step < world - 1:
            current_k, current_v = next_k, next_v
    return out.to(q.dtype)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", default="32768")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dtype = torch.bfloat16 if cuda else torch.float32
    scale = a.head_dim ** -0.5
    for total in [int(t) for t in a.tokens.split(",")]:
        assert total % world == 0, f"--tokens {total} must be a multiple of the world size {world}"
        block = total // world
        generator = torch.Generator().manual_seed(0)  # same global tensors on every rank
        q, k, v = (torch.randn(1, a.heads, total, a.head_dim, generator=generator).to(device, dtype) for _ in range(3))
        rows = slice(rank * block, (rank + 1) * block)
        lq, lk, lv = (t[:, :, rows].contiguous() for t in (q, k, v))
        times = []
        for run in range(1 + a.runs):
            dist.barrier()
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = ring_attention(lq, lk, lv, rank, world, scale)
            if cuda:
                torch.cuda.synchronize()
            dist.barrier()
            if run > 0:
                times.append(time.perf_counter() - start)
        if a.check:
            reference = partial_attention(q, k, v, True, scale)[0][:, :, rows]
            error = (out.float() - reference).abs().max().item()
            print(f"rank {rank}: max |ring - dense| = {error:.2e}", flush=True)
        if rank == 0:
            median = statistics.median(times)
            flops = 4 * total * total * a.heads * a.head_dim / 2
            print(f"torch ring attention, {world} ranks, {total} tokens, {a.heads} heads x d{a.head_dim}: "
                  f"median {median * 1000:.1f} ms ({flops / median / 1e12:.1f} TFLOP/s over all ranks)", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
