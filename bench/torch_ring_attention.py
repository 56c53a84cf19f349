#!/usr/bin/env python3
"""Ring attention over torch.distributed: the PyTorch baseline for Baton's Ring method.

  torchrun --nproc-per-node 2 bench/torch_ring_attention.py --tokens 32768,131072 [--check]

Each rank holds a contiguous block of S/W query, key and value rows (batch 1, causal, GQA-free
heads x head dim). The key/value block travels around the ring while the rank attends to the
block it holds: its own block causally, blocks of earlier ranks fully, later ranks' blocks not at
all. The partial results are merged with their log-sum-exp in fp32. Attention runs through
PyTorch's flash kernels (CUDA; the CPU flash path with gloo on machines without GPUs). `--check`
compares every rank's rows with float64 causal attention computed on that rank.
Prints the median time of `--runs` after one warm-up, measured on rank 0 between barriers.

The ring step sends this rank's K/V block to the next rank and receives the previous rank's as
ONE batch (`dist.batch_isend_irecv`, an NCCL group). Separate `isend`/`irecv` calls deadlock under
NCCL: they queue on one stream per peer pair, every rank's send waits for its peer's receive, and
every receive sits behind that rank's own send; NCCL's watchdog then aborts the process (SIGABRT)
once its timeout passes. Each process also binds its GPU (`LOCAL_RANK`) before the process group
is made (`device_id`), so NCCL's communicator and barriers use that GPU, not a guessed one.
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
    current = torch.stack((k, v))  # [2, 1, H, S/W, d]: one message per step
    for step in range(world):
        source = (rank - step) % world  # whose block this rank holds at this step
        requests = []
        if step < world - 1:  # start passing the block on before computing with it
            incoming = torch.empty_like(current)
            requests = dist.batch_isend_irecv([dist.P2POp(dist.isend, current, (rank + 1) % world),
                                               dist.P2POp(dist.irecv, incoming, (rank - 1) % world)])
        if source <= rank:
            out, lse = merge(out, lse, *partial_attention(q, current[0], current[1], source == rank, scale))
        for request in requests:
            request.wait()
        if step < world - 1:
            current = incoming
    return out.to(q.dtype)


def reference_rows(q, k, v, rows, scale):
    """Causal softmax(q k^T * scale) v in float64 for query rows `rows` (a slice), head by head and
    in chunks of 1024 rows to bound memory: [1, H, len(rows), d] float64."""
    q, k, v = (t.double() for t in (q, k, v))
    out = torch.empty(1, q.shape[1], rows.stop - rows.start, q.shape[3], dtype=torch.float64, device=q.device)
    for start in range(rows.start, rows.stop, 1024):
        stop = min(start + 1024, rows.stop)
        keys = torch.arange(stop, device=q.device)  # causal: row i sees keys 0...i
        visible = keys[None, :] <= torch.arange(start, stop, device=q.device)[:, None]
        for head in range(q.shape[1]):
            scores = (q[0, head, start:stop] @ k[0, head, :stop].T) * scale
            weights = torch.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1)
            out[0, head, start - rows.start:stop - rows.start] = weights @ v[0, head, :stop]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", default="32768")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    if cuda:
        assert local_rank < torch.cuda.device_count(), \
            f"LOCAL_RANK {local_rank} but {torch.cuda.device_count()} GPUs visible: one process per GPU (--nproc-per-node <= GPUs)"
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
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
            reference = reference_rows(q, k, v, rows, scale)
            error = (out.double() - reference).abs().max().item()
            tolerance = 3e-2 if dtype == torch.bfloat16 else 1e-4  # bf16 output rounding / fp32 sums
            print(f"rank {rank}: max |ring - float64 dense| = {error:.2e} over rows {rows.start}..<{rows.stop} "
                  f"({'ok' if error <= tolerance else 'FAILED'}, tolerance {tolerance:g})", flush=True)
            if not error <= tolerance:
                raise SystemExit(f"rank {rank}: ring attention differs from float64 dense attention by {error:.2e}")
        if rank == 0:
            median = statistics.median(times)
            flops = 4 * total * total * a.heads * a.head_dim / 2
            print(f"torch ring attention, {world} ranks, {total} tokens, {a.heads} heads x d{a.head_dim}: "
                  f"median {median * 1000:.1f} ms ({flops / median / 1e12:.1f} TFLOP/s over all ranks)", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
