#!/usr/bin/env python3
"""Reference fixtures for BatonVision: what qwen-vl-utils and transformers' Qwen2-VL processors make
of real clips and images.

Usage (a venv with CPU torch, torchvision, transformers 5.x, qwen-vl-utils, decord):
    python3 -m venv /work/venvs/vision-ref
    /work/venvs/vision-ref/bin/pip install torch torchvision "transformers>=5,<6" qwen-vl-utils \
        decord pillow
    /work/venvs/vision-ref/bin/python scripts/make_video_fixtures.py [--megamind PATH]

Writes Tests/Fixtures/video/:
    clips/*           tiny clips and images made with ffmpeg's lavfi testsrc2 (H.264/mp4, VP9/webm,
                      MJPEG/avi, MPEG-4/mkv, PNG, JPEG), committed so tests do not depend on the
                      local encoder build
    expected.json     per case: stream facts, the frame indices and sample fps qwen-vl-utils picks,
                      the resized size, second_per_grid_t, the processor's grid, the sum of every
                      pixel_values row, and which rows `<case>.rows.f32` holds; plus resampler checks
                      (torchvision v1 float, torchvision v2 uint8, Pillow's two passes) on a formula image and
                      torch.linspace(...).round() index tables
    <case>.rows.f32   every 32nd row of pixel_values(_videos), float32 little-endian, [rows, 1176]

Decoding is separated from preprocessing: the frames fed to the reference resize and processor
are decoded by the same ffmpeg command Baton runs (`-vf select=... -f image2pipe -c:v ppm`), at the
indices qwen-vl-utils' own reader (decord) picked. How far that
reader's frames are from ffmpeg's is recorded as `reader_max_abs_diff` (information, not a test).

Megamind.avi (MPEG-4, 720x528, 270 frames) is Debian's opencv-doc example clip:
    apt-get download opencv-doc && dpkg-deb -x opencv-doc_*.deb /tmp/ocv
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

# PyPI's torchvision wheels are CUDA builds whose C extension cannot load beside the CPU torch
# wheel. Resizing and normalising are pure torch; torchvision's import only registers fake kernels
# for these two ops, so declaring their schemas lets it import.
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

os.environ["FORCE_QWENVL_VIDEO_READER"] = "decord"  # read when qwen_vl_utils is imported

import transformers
from PIL import Image
from qwen_vl_utils import vision_process as qv
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as tv1
from torchvision.transforms.v2 import functional as tv2
from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/Fixtures/video"
ROW_STRIDE = 32
# Qwen2.5-VL's preprocessor_config.json bounds: the processor never resizes what qwen-vl-utils sized.
PROCESSOR_SIZE = {"shortest_edge": 3136, "longest_edge": 12845056}

CLIPS = {
    # name: (lavfi source, duration s, ffmpeg codec arguments)
    "testsrc_h264.mp4": ("testsrc2=size=160x120:rate=30000/1001", 3.2,
                         ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "15", "-bf", "2", "-crf", "30"]),
    "testsrc_vp9.webm": ("testsrc2=size=160x120:rate=25", 3.0, ["-c:v", "libvpx-vp9", "-b:v", "60k"]),
    "testsrc_mjpeg.avi": ("testsrc2=size=160x120:rate=10", 3.0, ["-c:v", "mjpeg", "-q:v", "24"]),
    "testsrc_mpeg4.mkv": ("testsrc2=size=176x144:rate=24", 2.5, ["-c:v", "mpeg4", "-q:v", "16"]),
}
IMAGES = {
    "testsrc.png": ("testsrc2=size=100x75", []),
    "testsrc.jpg": ("testsrc2=size=100x75", ["-q:v", "3"]),
}
SMALL = {"min_pixels": 8 * 28 * 28, "max_pixels": 64 * 28 * 28}


def make_clips(clip_dir: Path) -> None:
    clip_dir.mkdir(parents=True, exist_ok=True)
    for name, (source, seconds, codec) in CLIPS.items():
        if not (clip_dir / name).exists():
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-t", str(seconds), *codec,
                            str(clip_dir / name)], check=True)
    for name, (source, codec) in IMAGES.items():
        if not (clip_dir / name).exists():
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-frames:v", "1", *codec,
                            str(clip_dir / name)], check=True)


def ffmpeg_frames(path: Path, indices: list[int]) -> np.ndarray:
    """Frames `indices` decoded as Baton decodes them: [T, H, W, 3] uint8."""
    unique = sorted(set(indices))
    expression = "+".join(f"eq(n,{i})" for i in unique)
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:V:0", "-an", "-sn", "-dn",
                          "-vf", f"select='{expression}'", "-fps_mode", "passthrough", "-frames:v", str(len(unique)),
                          "-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24", "pipe:1"],
                         check=True, capture_output=True).stdout
    frames, offset = {}, 0
    for index in unique:
        fields, pos = [], offset + 2
        while len(fields) < 3:
            while out[pos:pos + 1].isspace():
                pos += 1
            start = pos
            while out[pos:pos + 1].isdigit():
                pos += 1
            fields.append(int(out[start:pos]))
        width, height = fields[0], fields[1]
        pos += 1
        frames[index] = np.frombuffer(out[pos:pos + width * height * 3], np.uint8).reshape(height, width, 3)
        offset = pos + width * height * 3
    return np.stack([frames[i] for i in indices])


def reader_metadata(path: Path, ele: dict) -> tuple[list[int], float, int, float]:
    """qwen-vl-utils' sampling through decord, its reader here (torchvision 0.28 has no read_video
    any more, and torchcodec's wheel does not load beside the CPU torch wheel)."""
    _, meta, sample_fps = qv._read_video_decord({"video": str(path), **ele})
    indices = [int(i) for i in meta["frames_indices"]]
    return indices, float(sample_fps), int(meta["total_num_frames"]), float(meta["fps"])


def rows_payload(name: str, pixel_values: torch.Tensor) -> dict:
    values = pixel_values.to(torch.float32).numpy()
    subset = np.ascontiguousarray(values[::ROW_STRIDE]).astype("<f4")
    (OUT / f"{name}.rows.f32").write_bytes(subset.tobytes())
    return {"rows": int(values.shape[0]), "row_stride": ROW_STRIDE, "rows_file": f"{name}.rows.f32",
            "row_sums": [round(float(s), 5) for s in values.astype(np.float64).sum(axis=1)]}


def video_case(name: str, clip: Path, ele: dict, with_pixels: bool) -> dict:
    indices, sample_fps, total, video_fps = reader_metadata(clip, ele)
    fetched, fetched_fps = qv.fetch_video({"video": str(clip), **ele}, return_video_sample_fps=True)
    _, _, height, width = fetched.shape
    case = {"name": name, "clip": clip.name, "options": ele, "total_frames": total, "video_fps": video_fps,
            "frame_indices": indices, "sample_fps": sample_fps, "resized": [int(height), int(width)]}
    if not with_pixels:
        return case
    frames = torch.from_numpy(ffmpeg_frames(clip, indices)).permute(0, 3, 1, 2).contiguous()
    # qwen-vl-utils' own resize call, on the frames Baton decodes.
    resized = tv1.resize(frames, [height, width], interpolation=InterpolationMode.BICUBIC, antialias=True).float()
    case["reader_max_abs_diff"] = float((resized - fetched).abs().max())
    processor = Qwen2VLVideoProcessor(size=PROCESSOR_SIZE, cap_pixels_per_frame=False)
    out = processor(videos=[resized], return_tensors="pt")
    grid = [int(v) for v in out["video_grid_thw"][0]]
    case.update({"grid": grid, "second_per_grid_t": processor.temporal_patch_size / sample_fps,
                 **rows_payload(name, out["pixel_values_videos"])})
    return case


def image_case(name: str, path: Path) -> dict:
    image = qv.fetch_image({"image": str(path)})
    processor = Qwen2VLImageProcessor(size=PROCESSOR_SIZE)
    out = processor(images=[image], return_tensors="pt")
    return {"name": name, "image": path.name, "resized": [image.height, image.width],
            "grid": [int(v) for v in out["image_grid_thw"][0]], **rows_payload(name, out["pixel_values"])}


def pattern(height: int, width: int) -> np.ndarray:
    """The formula image BicubicResamplerTests rebuilds: edges, ramps and saturated areas."""
    y, x, c = np.meshgrid(np.arange(height), np.arange(width), np.arange(3), indexing="ij")
    values = (x * 37 + y * 91 + c * 53 + (x * y * 7) % 29 + ((x ^ y) & 15) * 5) % 256
    values = np.where((x // 5 + y // 4) % 3 == 0, 255, values)
    return np.where((x + 2 * y) % 11 == 0, 0, values).astype(np.uint8)


def resampler_cases() -> list[dict]:
    cases = []
    for (h, w), (oh, ow) in [((29, 37), (15, 20)), ((20, 24), (45, 31)), ((40, 30), (22, 47)), ((97, 61), (28, 28))]:
        image = pattern(h, w)
        tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous()
        v1 = tv1.resize(tensor, [oh, ow], interpolation=InterpolationMode.BICUBIC, antialias=True)
        v2 = tv2.resize(tensor, [oh, ow], interpolation=InterpolationMode.BICUBIC, antialias=True)
        # Pillow's C resampler runs the horizontal pass, then the vertical one; a one-axis resize is
        # exactly one pass, so composing two of them is that algorithm. Pillow 13's Image.resize
        # sometimes runs the vertical pass first instead (which changes rounding); how many values
        # that moves is recorded, not tested.
        resize = lambda a, size: np.asarray(Image.fromarray(a).resize(size, Image.Resampling.BICUBIC))  # noqa: E731
        pil = resize(resize(image, (ow, h)), (ow, oh))
        pil_one_call = resize(image, (ow, oh))
        encode = lambda a: base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()  # noqa: E731
        cases.append({"input": [h, w], "output": [oh, ow],
                      "float32": encode(v1.permute(1, 2, 0)), "torchvision": encode(v2.permute(1, 2, 0)),
                      "pillow": encode(pil), "pillow_one_call_values_differing": int((pil != pil_one_call).sum())})
    return cases


def linspace_cases() -> list[dict]:
    cases = []
    for total in [5, 7, 10, 31, 60, 90, 100, 270, 301, 795, 1000, 4499, 10007]:
        for count in [2, 4, 6, 8, 10, 22, 64, 160, 768]:
            if count <= total:
                indices = torch.linspace(0, total - 1, count).round().long().tolist()
                cases.append({"total": total, "count": count, "indices": indices})
    return cases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megamind", default="/tmp/ocv/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
    args = parser.parse_args()
    clip_dir = OUT / "clips"
    make_clips(clip_dir)
    cases = []
    for clip in sorted(CLIPS):
        cases.append(video_case(clip.split(".")[0], clip_dir / clip, {"fps": 2.0, **SMALL}, with_pixels=True))
        cases.append(video_case(clip.split(".")[0] + "_default", clip_dir / clip, {}, with_pixels=False))
    megamind = Path(args.megamind)
    if megamind.exists():
        cases.append(video_case("megamind", megamind, {"fps": 2.0, "max_frames": 6, "min_pixels": 4 * 28 * 28,
                                                       "max_pixels": 16 * 28 * 28}, with_pixels=True))
        cases.append(video_case("megamind_default", megamind, {}, with_pixels=False))
        cases.append(video_case("megamind_fps1", megamind, {"fps": 1.0, "max_pixels": 128 * 28 * 28}, with_pixels=False))
    else:
        print(f"warning: {megamind} not found; the real-clip case is left out", file=sys.stderr)
    images = [image_case("image_png", clip_dir / "testsrc.png"), image_case("image_jpg", clip_dir / "testsrc.jpg")]
    ffmpeg_version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    expected = {
        "generator": "scripts/make_video_fixtures.py",
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "transformers": transformers.__version__, "qwen_vl_utils": "0.0.14", "ffmpeg": ffmpeg_version,
                     "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "videos": cases, "images": images, "resampler": resampler_cases(), "linspace": linspace_cases(),
    }
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {OUT}: {len(cases)} video cases, {len(images)} images")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
