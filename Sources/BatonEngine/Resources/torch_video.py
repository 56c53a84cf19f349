#!/usr/bin/env python3
"""PyTorch + transformers Qwen2.5-VL or InternVL3 time to first token on a video: the baseline rows of
`baton bench video --baseline torch` (the paper's speed-test setting: random weights, bf16, sdpa).

  python3 torch_video.py --config DIR_WITH_CONFIG_JSON --grids 8x52x92,32x52x92 [--runs 1] [--json OUT] [--device cuda]

Baton writes the preset's config.json (released checkpoint layout) and runs this script, embedded in
the binary, before loading its own model. For each grid T x H x W (patches) it builds random
`pixel_values_videos` [T*H*W, 1176], the chat layout's ids (14 system/user ids, <|vision_start|>,
T*H*W/4 <|video_pad|>, <|vision_end|>, 12 question ids), `second_per_grid_ts` 1 (fps 2, as the
paper's drivers), and times one forward (logits of the last position only) and, separately, the
vision tower alone on the same pixels, with one untimed warm-up each. Peak memory is reported.
InternVL (config model_type "internvl"): T x H x W is T frames of one 448x448 tile each, random
`pixel_values` [T, 3, 448, 448]; ids: 14 system/user ids, per frame 4 "FrameK: " ids, <img>, 256
<IMG_CONTEXT>, </img> and a line break, then 12 question ids; the tower is `get_image_features`
(InternViT, pixel shuffle and projector).
"""
import argparse, json, statistics, sys, time

try:
    import torch
    import transformers
    from transformers import AutoConfig, InternVLForConditionalGeneration, Qwen2_5_VLForConditionalGeneration
except ImportError as error:  # Baton reports this line as the reason its baseline rows did not run.
    print(f"torch_video.py: needs torch and transformers with Qwen2.5-VL ({error})", file=sys.stderr)
    sys.exit(2)


def timed(fn, cuda):
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(forward, tower, grid, cuda, runs):
    """One untimed warm-up each, then `runs` timed forwards and towers (their median)."""
    t, h, w = grid
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    timed(forward, cuda)
    times = [timed(forward, cuda) for _ in range(runs)]
    timed(tower, cuda)
    vision = statistics.median(timed(tower, cuda) for _ in range(runs))
    row = {"grid": [t, h, w], "runs": times, "median_s": statistics.median(times), "vision_s": vision,
           "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0}
    print(f"torch {t}x{h}x{w} ({t * h * w // 4} visual tokens): {row['median_s']:.3f} s, vision {vision:.3f} s",
          file=sys.stderr)
    return row


def internvl_case(model, config, frames, dtype, device):
    """InternVL: `frames` tiles, the frame-per-line prompt; (forward, tower) closures."""
    size = config.vision_config.image_size
    size = size[0] if isinstance(size, (list, tuple)) else size
    pixels = torch.randn(frames, 3, size, size, dtype=dtype, device=device)
    image, start, end = config.image_token_id, config.image_token_id - 2, config.image_token_id - 1
    frame = [300, 301, 302, 303, start] + [image] * config.image_seq_length + [end, 198]
    ids = [100 + i for i in range(14)] + frame * frames + [200 + i for i in range(12)]
    input_ids = torch.tensor([ids], device=device)
    forward = lambda: model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                            pixel_values=pixels, logits_to_keep=1)
    tower = lambda: model.get_image_features(pixel_values=pixels, vision_feature_layer=-1,
                                             vision_feature_select_strategy="default")
    return forward, tower


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--grids", required=True)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    device = "cuda" if args.device.startswith("cuda") or args.device.startswith("gpu") else "cpu"
    device = args.device if args.device.startswith("cuda:") else device
    cuda = device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("torch_video.py: CUDA is not available to PyTorch", file=sys.stderr)
        return 2
    config = AutoConfig.from_pretrained(args.config)
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(0)
    internvl = config.model_type == "internvl"
    family = InternVLForConditionalGeneration if internvl else Qwen2_5_VLForConditionalGeneration
    # Built on the device: random initialisation of 8B parameters on the host took minutes.
    with torch.device(device):
        model = family._from_config(config, attn_implementation="sdpa", torch_dtype=dtype)
    model = model.to(device).eval()
    visual = model.model.visual if hasattr(model, "model") and hasattr(model.model, "visual") else getattr(model, "visual", None)
    rows = []
    for text in args.grids.split(","):
        t, h, w = (int(x) for x in text.split("x"))
        if internvl:
            forward, tower = internvl_case(model, config, t, dtype, device)
            rows.append(measure(forward, tower, (t, h, w), cuda, args.runs))
            continue
        pixels = torch.randn(t * h * w, 1176, dtype=dtype, device=device)
        grid = torch.tensor([[t, h, w]], device=device)
        ids = [100 + i for i in range(14)] + [config.vision_start_token_id] \
            + [config.video_token_id] * (t * h * w // 4) + [config.vision_end_token_id] + [200 + i for i in range(12)]
        input_ids = torch.tensor([ids], device=device)
        forward = lambda: model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                pixel_values_videos=pixels, video_grid_thw=grid,
                                second_per_grid_ts=torch.tensor([1.0], device=device), logits_to_keep=1)
        tower = lambda: visual(pixels, grid_thw=grid)
        rows.append(measure(forward, tower, (t, h, w), cuda, args.runs))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"torch": torch.__version__, "transformers": transformers.__version__,
                       "device": torch.cuda.get_device_name() if cuda else "cpu", "rows": rows}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
