"""End-to-end speed and memory of ``polychrome colorize`` against a plain reference pipeline, same
network, same photos, one run:

- reference (the way richzhang/colorization's demo works, one image at a time): PIL load -> bicubic
  resize to the network size -> skimage ``rgb2lab`` (small and full size) -> network -> bilinear
  upsample of ab -> skimage ``lab2rgb`` -> PNG save;
- polychrome with PyTorch, and with onnxruntime (``--backend onnx``; its largest ab difference from
  PyTorch on the same inputs is reported);
- peak memory (max RSS of a fresh process) colourising one 50-megapixel photo, both pipelines, against a
  process that only loads the model.

    python benchmarks/colorize.py                      # sample-photos in POLYCHROME_DATA, bundled model
    python benchmarks/colorize.py --images DIR --model RUN_OR_WEIGHTS --repeat 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from polychrome.colorize import colorize_paths, load_colorizer, plan_outputs
from polychrome.settings import data_root

MEGAPIXELS = 50


def reference(pipeline, paths: list[Path], out: Path, temperature: float) -> None:
    from skimage.color import lab2rgb, rgb2lab

    size = pipeline.input_size
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        small = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BICUBIC))
        lightness = torch.from_numpy(rgb2lab(small)[..., :1]).permute(2, 0, 1)[None].float()
        ab = pipeline.predict_ab(lightness, temperature)  # the same network and decoding
        ab = F.interpolate(ab, size=rgb.shape[:2], mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
        lab = np.concatenate([rgb2lab(rgb)[..., :1], ab], axis=2)
        colour = (np.clip(lab2rgb(lab), 0, 1) * 255).round().astype(np.uint8)
        Image.fromarray(colour).save(out / f"{path.stem}.png")


def ours(pipeline, paths: list[Path], out: Path, temperature: float, batch_size: int) -> None:
    jobs, _ = plan_outputs([str(p) for p in paths], out)
    report = colorize_paths(pipeline, jobs, temperature, batch_size, progress=False)
    if report.failed:
        raise RuntimeError(f"failed: {report.failed}")


def timed(run, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            run(Path(out))
            best = min(best, time.perf_counter() - start)
    return best


def onnx_difference(torch_pipeline, onnx_pipeline, paths: list[Path]) -> float:
    from polychrome.pipeline import lightness_of, model_input

    planes = [lightness_of(torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)) for p in paths]
    lightness = model_input(planes, torch_pipeline.input_size)
    return float((torch_pipeline.predict_ab(lightness) - onnx_pipeline.predict_ab(lightness)).abs().max())


def peak_memory(which: str, model: str, photo: Path | None) -> float:
    """Max RSS (MiB) of a fresh process that loads the model and colourises ``photo`` with ``which``
    pipeline, or (``photo`` None) only loads the model: the difference is what colourising took."""
    code = f"""
import json, resource, sys, tempfile, torch
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).parent)!r})
from colorize import ours, reference
from polychrome.colorize import load_colorizer
pipeline = load_colorizer({model!r})
photo = {str(photo) if photo else None!r}
if photo:
    with tempfile.TemporaryDirectory() as out:
        if {which!r} == "reference":
            reference(pipeline, [Path(photo)], Path(out), pipeline.temperature)
        else:
            ours(pipeline, [Path(photo)], Path(out), None, 1)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--images", type=Path, default=None, help="folder of photos (default: POLYCHROME_DATA/sample-photos)"
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2, help="best of N timings each")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    torch.set_flush_denormal(True)

    folder = args.images or data_root() / "sample-photos"
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    pixels = sum(np.prod(Image.open(p).size) for p in paths)
    pipeline = load_colorizer(args.model)
    t = pipeline.temperature
    print(
        f"{len(paths)} photos in {folder} ({pixels / len(paths) / 1e6:.2f} MP on average), model {args.model} "
        f"(input {pipeline.input_size}px), torch {torch.__version__}, {torch.get_num_threads()} threads"
    )

    seconds = {
        "reference (skimage, one by one)": timed(lambda out: reference(pipeline, paths, out, t), args.repeat),
        "polychrome colorize (torch)": timed(
            lambda out: ours(pipeline, paths, out, None, args.batch_size), args.repeat
        ),
    }
    with tempfile.TemporaryDirectory() as folder_onnx:
        from polychrome.onnx_backend import export_onnx

        onnx_path = export_onnx(pipeline.model, Path(folder_onnx) / "model.onnx", pipeline.input_size, t)
        onnx_pipeline = load_colorizer(str(onnx_path), backend="onnx")
        seconds["polychrome colorize (onnxruntime)"] = timed(
            lambda out: ours(onnx_pipeline, paths, out, None, args.batch_size), args.repeat
        )
        difference = onnx_difference(pipeline, onnx_pipeline, paths)
    base = seconds["reference (skimage, one by one)"]
    print("\n| pipeline | images/s | speed-up vs reference |\n|---|---:|---:|")
    for name, s in seconds.items():
        print(f"| {name} | {len(paths) / s:.2f} | {base / s:.2f}x |")
    print(f"\nonnxruntime vs PyTorch: largest ab difference {difference:.2e} (Lab units) on these photos")

    if not args.skip_memory:
        with tempfile.TemporaryDirectory() as tmp:
            side = (int((MEGAPIXELS * 1e6 * 4 / 3) ** 0.5), int((MEGAPIXELS * 1e6 * 3 / 4) ** 0.5))
            photo = Path(tmp) / "big.jpg"
            Image.open(paths[0]).convert("RGB").resize(side, Image.BICUBIC).save(photo, quality=90)
            loaded = peak_memory("", args.model, None)
            print(
                f"\npeak memory colourising one {side[0]}x{side[1]} photo ({side[0] * side[1] / 1e6:.1f} MP; its RGB alone is "
                f"{side[0] * side[1] * 3 / 2**20:.0f} MiB), max RSS of a fresh process; a process that only loads the model "
                f"peaks at {loaded:.0f} MiB:\n\n| pipeline | peak | peak - loading only |\n|---|---:|---:|"
            )
            for which in ("reference", "ours"):
                peak = peak_memory(which, args.model, photo)
                print(f"| {which} | {peak:.0f} MiB | {peak - loaded:.0f} MiB |")


if __name__ == "__main__":
    main()
