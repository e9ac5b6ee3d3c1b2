"""The per-image steps of ``polychrome colorize`` against what they replaced, timed side by side on the
same photos (one thread; best of N): PNG encoding (``write_png`` vs Pillow at compress_level=1), Lab ->
uint8 RGB (``lab_to_uint8`` vs kornia's conversion, rounded) and L from RGB (``uint8_to_lightness`` vs the
full ``uint8_to_lab``).

    python benchmarks/components.py                  # sample-photos in POLYCHROME_DATA
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from polychrome.color import lab_to_rgb, lab_to_uint8, uint8_to_lab, uint8_to_lightness
from polychrome.data import load_rgb, write_png
from polychrome.settings import data_root


def best_ms(work, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def pillow_png(rgb: np.ndarray) -> int:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    return buffer.tell()


def our_png(rgb: np.ndarray) -> int:
    buffer = io.BytesIO()
    write_png(buffer, rgb)
    return buffer.tell()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--images", type=Path, default=None, help="folder of photos (default: POLYCHROME_DATA/sample-photos)"
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = args.images or data_root() / "sample-photos"
    photos = [load_rgb(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in {".png", ".jpg", ".jpeg"}]
    tensors = [torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous() for rgb in photos]
    labs = [uint8_to_lab(t) for t in tensors]
    steps = {
        "PNG encoding": (lambda: [pillow_png(p) for p in photos], lambda: [our_png(p) for p in photos]),
        "Lab -> uint8 RGB": (
            lambda: [(lab_to_rgb(lab) * 255).round().to(torch.uint8) for lab in labs],
            lambda: [lab_to_uint8(lab) for lab in labs],
        ),
        "L from uint8 RGB": (
            lambda: [uint8_to_lab(t)[:, :1] for t in tensors],
            lambda: [uint8_to_lightness(t) for t in tensors],
        ),
    }
    print(f"{len(photos)} photos in {folder}, torch {torch.__version__}, 1 thread, best of {args.repeat}\n")
    print("| step | before (ms/image) | polychrome (ms/image) | speed-up |\n|---|---:|---:|---:|")
    for name, (before, ours) in steps.items():
        old, new = best_ms(before, args.repeat) / len(photos), best_ms(ours, args.repeat) / len(photos)
        print(f"| {name} | {old:.2f} | {new:.2f} | {old / new:.1f}x |")
    pillow, mine = sum(pillow_png(p) for p in photos), sum(our_png(p) for p in photos)
    print(f"\nPNG bytes: Pillow level 1 {pillow:,}, write_png {mine:,} ({mine / pillow - 1:+.1%})")


if __name__ == "__main__":
    main()
