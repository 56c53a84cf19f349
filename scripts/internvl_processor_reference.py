#!/usr/bin/env python3
"""Reference numbers for BatonVision's InternVL3 preprocessing (Tests/Fixtures/internvl-processor).

What InternVL3 does to images and videos lives in OpenGVLab's README loader (`build_transform`,
`find_closest_aspect_ratio`, `dynamic_preprocess`, `get_index`, `load_video`; the same functions are
copied in thunlp/APB `experiments_spava/longvideobench/.../longvideobench_dataset_instruct.py`). They
are restated below in our own words, step for step, and run with the libraries the original runs:
Pillow's `Image.resize` (default filter: BICUBIC) and torchvision's Resize/ToTensor/Normalize.

Usage (a CPU venv; PyPI's torchvision is a CUDA build, installed without its dependencies):
    python3 -m venv /work/venvs/ivproc
    /work/venvs/ivproc/bin/pip install pillow numpy torch     # the CPU torch wheel where one is at hand
    /work/venvs/ivproc/bin/pip install --no-deps torchvision
    /work/venvs/ivproc/bin/python scripts/internvl_processor_reference.py

Writes Tests/Fixtures/internvl-processor/expected.json:
    tiling        (width, height, min, max) -> the grid dynamic_preprocess picks
    frame_indices (frames in stream, segments) -> get_index's frame numbers
    images        per case: grid, tile count, and checksums of the patch rows (see `rows_payload`)
    videos        per case: clip, frame count, indices, and the same checksums

Pillow: Pillow's C resampler (<= 12) runs the horizontal pass, then the vertical one, and Baton's
`.pillow` resampler does the same; the Pillow 13 build here sometimes runs the vertical pass first,
which moves some values by a level. The reference therefore resizes in two one-axis calls
(`pillow_resize`), each exactly one pass, and records how many bytes one `Image.resize` call differs
by (`pillow_one_call_bytes_differing`, information only). Video frames are decoded by the same
ffmpeg command Baton runs, so only preprocessing is compared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

# PyPI's torchvision wheels are CUDA builds whose C extension does not load beside the CPU torch
# wheel; declaring the two op schemas its import registers fake kernels for lets it import.
try:
    import torchvision  # noqa: F401
except RuntimeError:
    _tv = torch.library.Library("torchvision", "DEF")
    _tv.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _tv.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    for name in list(sys.modules):
        if name.startswith("torchvision"):
            del sys.modules[name]
    import torchvision  # noqa: F401

import PIL
import torchvision.transforms as T
from PIL import Image
from torchvision.transforms.functional import InterpolationMode

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/Fixtures/internvl-processor"
CLIPS = ROOT / "Tests/Fixtures/video/clips"
TILE = 448
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
ROW_STRIDE = 61  # row sums of every 61st patch row
SAMPLES = 320  # single values at fixed pseudo-random (row, column) positions


# --- the original algorithm, restated -------------------------------------------------------------

def transform(tile: Image.Image) -> torch.Tensor:
    """`build_transform(448)`: RGB, bicubic resize to 448x448 (the identity for a tile), /255, normalise."""
    return T.Compose([
        T.Lambda(lambda img: img.convert("RGB") if img.mode != "RGB" else img),
        T.Resize((TILE, TILE), interpolation=InterpolationMode.BICUBIC),
        T.ToTensor(),
        T.Normalize(mean=MEAN, std=STD),
    ])(tile)


def candidate_grids(min_num: int, max_num: int) -> list[tuple[int, int]]:
    """(columns, rows) with min <= columns*rows <= max, from a Python set, sorted by tile count."""
    grids = {(i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
             if min_num <= i * j <= max_num}
    return sorted(grids, key=lambda g: g[0] * g[1])


def closest_grid(width: int, height: int, grids: list[tuple[int, int]]) -> tuple[int, int]:
    """`find_closest_aspect_ratio`: nearest columns/rows to width/height; on an exact tie the later
    grid wins when the image covers more than half of its canvas."""
    aspect, area = width / height, width * height
    best_difference, best = float("inf"), (1, 1)
    for grid in grids:
        difference = abs(aspect - grid[0] / grid[1])
        if difference < best_difference:
            best_difference, best = difference, grid
        elif difference == best_difference and area > 0.5 * TILE * TILE * grid[0] * grid[1]:
            best = grid
    return best


def pillow_resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image.resize(size)` (BICUBIC) as Pillow's C source does it: horizontal pass, then vertical."""
    if image.size == size:
        return image.copy()
    if image.width != size[0]:
        image = image.resize((size[0], image.height), Image.Resampling.BICUBIC)
    if image.height != size[1]:
        image = image.resize(size, Image.Resampling.BICUBIC)
    return image


def dynamic_preprocess(image: Image.Image, min_num: int, max_num: int, use_thumbnail: bool):
    """Tiles of `image`: the canvas of the chosen grid cut row-major, then the thumbnail."""
    columns, rows = closest_grid(image.width, image.height, candidate_grids(min_num, max_num))
    canvas = pillow_resize(image, (TILE * columns, TILE * rows))
    one_call = np.asarray(image.resize((TILE * columns, TILE * rows)))
    differing = int((one_call != np.asarray(canvas)).sum())
    tiles = [canvas.crop(((k % columns) * TILE, (k // columns) * TILE,
                          (k % columns + 1) * TILE, (k // columns + 1) * TILE)) for k in range(columns * rows)]
    if use_thumbnail and len(tiles) != 1:
        tiles.append(pillow_resize(image, (TILE, TILE)))
    return (columns, rows), tiles, differing


def get_index(max_frame: int, num_segments: int, fps: float = 30.0) -> list[int]:
    """`get_index(bound=None, fps, max_frame, first_idx=0, num_segments)`: segment middles of [0, max_frame]
    (without a bound the fps never matters)."""
    start_idx, end_idx = max(0, round(-100000 * fps)), min(round(100000 * fps), max_frame)
    seg_size = float(end_idx - start_idx) / num_segments
    return [int(start_idx + (seg_size / 2) + np.round(seg_size * idx)) for idx in range(num_segments)]


# --- Baton's row layout and the checksums stored --------------------------------------------------

def patch_rows(pixel_values: torch.Tensor) -> np.ndarray:
    """[tiles, 3, 448, 448] -> [tiles*1024, 588]: rows (tile, bh, bw, dy, dx), each row (c, ky, kx)."""
    tiles = pixel_values.shape[0]
    x = pixel_values.reshape(tiles, 3, 16, 2, 14, 16, 2, 14)  # t, c, bh, dy, ky, bw, dx, kx
    return x.permute(0, 2, 5, 3, 6, 1, 4, 7).reshape(tiles * 1024, 588).numpy()


def rows_payload(rows: np.ndarray) -> dict:
    wide = rows.astype(np.float64)
    generator = np.random.default_rng(20250807)
    positions = [[int(r), int(c)] for r, c in zip(generator.integers(0, rows.shape[0], SAMPLES),
                                                   generator.integers(0, rows.shape[1], SAMPLES))]
    return {
        "rows": int(rows.shape[0]),
        "tile_sums": [round(float(s), 4) for s in wide.reshape(-1, 1024 * 588).sum(axis=1)],
        "row_stride": ROW_STRIDE,
        "row_sums": [round(float(s), 5) for s in wide[::ROW_STRIDE].sum(axis=1)],
        "samples": [[r, c, float(rows[r, c])] for r, c in positions],
    }


def pattern(height: int, width: int) -> np.ndarray:
    """`BicubicResamplerTests.pattern`: ramps, edges and saturated patches, [height, width, 3] uint8."""
    y, x = np.mgrid[0:height, 0:width]
    out = np.zeros((height, width, 3), np.uint8)
    for c in range(3):
        value = (x * 37 + y * 91 + c * 53 + (x * y * 7) % 29 + ((x ^ y) & 15) * 5) % 256
        value = np.where((x // 5 + y // 4) % 3 == 0, 255, value)
        value = np.where((x + 2 * y) % 11 == 0, 0, value)
        out[..., c] = value
    return out


def ffmpeg_frames(path: Path, indices: list[int]) -> list[np.ndarray]:
    """Frames `indices` decoded as Baton's FrameDecoder decodes them."""
    unique = sorted(set(indices))
    expression = "+".join(f"eq(n,{i})" for i in unique)
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:V:0", "-an", "-sn", "-dn",
                          "-vf", f"select='{expression}'", "-fps_mode", "passthrough", "-frames:v", str(len(unique)),
                          "-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24", "pipe:1"],
                         check=True, capture_output=True).stdout
    frames, offset = {}, 0
    for index in unique:
        header = out[offset:offset + 64].split(maxsplit=4)  # P6, width, height, 255, pixels...
        width, height = int(header[1]), int(header[2])
        start = offset + len(b" ".join(header[:4])) + 1
        frames[index] = np.frombuffer(out[start:start + width * height * 3], np.uint8).reshape(height, width, 3)
        offset = start + width * height * 3
    return [frames[i] for i in indices]


def image_case(name: str, image: Image.Image, min_num: int = 1, max_num: int = 12) -> dict:
    grid, tiles, differing = dynamic_preprocess(image, min_num, max_num, use_thumbnail=True)
    pixel_values = torch.stack([transform(tile) for tile in tiles])
    return {"name": name, "size": [image.width, image.height], "min_tiles": min_num, "max_tiles": max_num,
            "grid": list(grid), "tiles": len(tiles), "pillow_one_call_bytes_differing": differing,
            **rows_payload(patch_rows(pixel_values))}


def video_case(name: str, clip: str, total_frames: int, segments: int) -> dict:
    indices = get_index(total_frames - 1, segments)
    tiles = []
    for frame in ffmpeg_frames(CLIPS / clip, indices):
        # load_video: dynamic_preprocess(max_num=1) is one squashed 448x448 tile, no thumbnail.
        _, frame_tiles, _ = dynamic_preprocess(Image.fromarray(frame), 1, 1, use_thumbnail=True)
        tiles += frame_tiles
    pixel_values = torch.stack([transform(tile) for tile in tiles])
    return {"name": name, "clip": clip, "total_frames": total_frames, "segments": segments,
            "frame_indices": indices, **rows_payload(patch_rows(pixel_values))}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sizes = [(1000, 1000), (448, 448), (500, 300), (300, 500), (100, 75), (640, 360), (1280, 720), (1920, 1080),
             (720, 1280), (2000, 300), (300, 2000), (10000, 10), (10, 10000), (1, 1), (897, 448), (1344, 448),
             (1350, 450), (900, 900), (600, 600), (1792, 1344), (336, 448), (1000, 250), (250, 1000), (4032, 3024)]
    limits = [(1, 12), (1, 6), (2, 12), (1, 1), (3, 9)]
    tiling = [{"size": [w, h], "min_tiles": lo, "max_tiles": hi,
               "grid": list(closest_grid(w, h, candidate_grids(lo, hi)))} for w, h in sizes for lo, hi in limits]
    # Ties between equal-count grids depend on the set's iteration order; Baton takes columns, then rows,
    # ascending (transformers' GotOcr2 order). Sweep to show where the two orders could disagree.
    disagreements = 0
    for lo, hi in [(1, 12), (1, 6), (2, 12), (1, 24), (3, 9)]:
        ordered = sorted([(i, j) for i in range(1, hi + 1) for j in range(1, hi + 1) if lo <= i * j <= hi],
                         key=lambda g: g[0] * g[1])
        grids = candidate_grids(lo, hi)
        for w in range(1, 2400, 5):
            for h in range(1, 2400, 7):
                disagreements += closest_grid(w, h, grids) != closest_grid(w, h, ordered)
    assert disagreements == 0, disagreements
    frame_cases = [(96, 8), (96, 16), (30, 7), (270, 64), (75, 75), (1000, 256), (2, 1), (1, 1), (10, 3), (33, 32),
                   (100000, 512), (3600, 128)]
    frame_indices = [{"total_frames": n, "segments": k, "indices": get_index(n - 1, k)} for n, k in frame_cases]
    png = Image.open(CLIPS / "testsrc.png").convert("RGB")
    images = [
        image_case("pattern_500x300", Image.fromarray(pattern(300, 500))),
        image_case("pattern_300x500_max6", Image.fromarray(pattern(500, 300)), 1, 6),
        image_case("testsrc_png", png),
    ]
    videos = [video_case("testsrc_h264_8", "testsrc_h264.mp4", 96, 8)]
    expected = {
        "generator": {"script": "scripts/internvl_processor_reference.py",
                      "versions": {"pillow": PIL.__version__, "torch": torch.__version__,
                                   "torchvision": torchvision.__version__, "numpy": np.__version__}},
        "tiling": tiling, "frame_indices": frame_indices, "images": images, "videos": videos,
    }
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {OUT / 'expected.json'}")


if __name__ == "__main__":
    main()
