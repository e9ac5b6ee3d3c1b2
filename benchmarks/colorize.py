"""End-to-end speed and memory of ``polychrome colorize`` against a plain reference pipeline, same
network, same photos, one run:

- reference (the way richzhang/colorization's demo works, one image at a time): PIL load -> bicubic
  resize to the network size -> skimage ``rgb2lab`` (small and full size) -> network -> bilinear
  upsample of ab -> skimage ``lab2rgb`` -> PNG save;
- polychrome with PyTorch (the threads ``polychrome colorize`` chooses), and with onnxruntime
  (``--backend onnx``; its largest ab difference from PyTorch on the same inputs is reported);
- torch's threads: polychrome with one and with two (waiting OpenMP threads spinning, the default, or
  sleeping), on an idle machine and beside two training-like torch jobs, the case a shared machine is in; ``polychrome colorize`` takes half the cores (``polychrome.cli.inference_threads``);
- where the time goes, per image on one thread: reading, L, the network (and decoding), the merge, PNG
  encoding, against the floor (reading each photo and writing a PNG of it, which any colouriser does);
- peak memory (max RSS of a fresh process) colourising one 50-megapixel photo, both pipelines, against a
  process that only loads the model.

    python benchmarks/colorize.py                      # 200 photos of mixed sizes from POLYCHROME_DATA
    python benchmarks/colorize.py --images DIR --model RUN_OR_WEIGHTS --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from polychrome.cli import inference_threads
from polychrome.colorize import colorize_paths, load_colorizer, plan_outputs
from polychrome.settings import data_root

MEGAPIXELS = 50
ROUNDS = 3  # of the threads table: its runs are short, so each setting is timed in turn, three times


def reference(pipeline, paths: list[Path], out: Path, temperature: float) -> None:
    from skimage.color import lab2rgb, rgb2lab

    size = pipeline.input_size
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        small = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BICUBIC))
        lightness = torch.from_numpy(rgb2lab(small)[..., :1]).permute(2, 0, 1)[None].float()
        with torch.no_grad():
            ab = pipeline.model.network.predict_ab(lightness, temperature)  # the same network and decoding
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
    photos = [np.array(Image.open(p).convert("RGB")) for p in paths]
    torch_ab, onnx_ab = (
        [q.ab for q in pipeline.predict([pipeline.prepare(rgb) for rgb in photos])]
        for pipeline in (torch_pipeline, onnx_pipeline)
    )
    return max(float((a - b).abs().max()) for a, b in zip(torch_ab, onnx_ab, strict=True))


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


def mixed_photos(count: int = 200) -> list[Path]:
    """``count`` photos of mixed sizes, drawn with seed 0: the 33 sample photos (0.1-2 MP), then BSDS500 test
    (481x321), Imagenette (224 px) and Intel scenes (128 px) in equal parts."""
    import random

    root = data_root()
    pools = [
        sorted((root / "bsds500/images/test").glob("*.jpg")),
        sorted((root / "imagenette2-224/train").glob("*/*.JPEG")),
        sorted((root / "intel-scenes-train").rglob("*.jpg")),
    ]
    chosen = sorted(p for p in (root / "sample-photos").iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    rest = count - len(chosen)
    generator = random.Random(0)
    for index, pool in enumerate(pools):
        chosen += generator.sample(pool, rest // len(pools) + (index < rest % len(pools)))
    return chosen


NEIGHBOUR = """
import torch
x, conv = torch.rand(64, 32, 32, 32), torch.nn.Conv2d(32, 32, 3)
while True:
    conv(x)
"""


@contextmanager
def busy_neighbours(count: int = 2):
    """``count`` other torch jobs (a convolution in a loop, torch's default threads: what a training is to
    the machine) keeping the cores busy while the block runs."""
    processes = [subprocess.Popen([sys.executable, "-c", NEIGHBOUR]) for _ in range(count)]
    try:
        time.sleep(1.0)
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait()


def parts(pipeline, paths: list[Path], batch_size: int) -> dict[str, float]:
    """Milliseconds per image of each step ``colorize_paths`` takes, run one after another on one thread, and
    the floor: reading each photo and encoding a PNG of it."""
    import io

    from polychrome.data import load_rgba, write_png

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    spent = dict.fromkeys(["read", "L", "network + decoding", "merge", "PNG", "floor: read + PNG of the photo"], 0.0)
    for first in range(0, len(paths), batch_size):
        marks = [time.perf_counter()]
        loaded = [load_rgba(path) for path in paths[first : first + batch_size]]
        marks.append(time.perf_counter())
        photos = [pipeline.prepare(rgb, alpha) for rgb, alpha in loaded]
        marks.append(time.perf_counter())
        predictions = pipeline.predict(photos)
        marks.append(time.perf_counter())
        colours = [pipeline.render(prediction).permute(1, 2, 0).numpy() for prediction in predictions]
        marks.append(time.perf_counter())
        for colour, (_, alpha) in zip(colours, loaded, strict=True):
            write_png(io.BytesIO(), colour, alpha)
        marks.append(time.perf_counter())
        for path in paths[first : first + batch_size]:
            write_png(io.BytesIO(), *load_rgba(path))
        marks.append(time.perf_counter())
        for name, begin, end in zip(spent, marks[:-1], marks[1:], strict=True):
            spent[name] += end - begin
    torch.set_num_threads(threads)
    return {name: 1000 * seconds / len(paths) for name, seconds in spent.items()}


def throughput(threads: int, policy: str, paths: list[Path], batch_size: int, model: str) -> float:
    """Images per second that ``polychrome colorize PHOTOS --threads N`` reports (its startup not counted), in
    a fresh process with OMP_WAIT_POLICY ``policy`` (ACTIVE, OpenMP's default: waiting threads spin; PASSIVE:
    they sleep; read only when a process loads OpenMP)."""
    with tempfile.TemporaryDirectory() as out:
        command = ["colorize", *map(str, paths), "--out", out, "--quiet", "--threads", str(threads)]
        command += ["--batch-size", str(batch_size), "--model", model]
        result = subprocess.run(
            [str(Path(sys.executable).with_name("polychrome")), *command],
            env={**os.environ, "OMP_WAIT_POLICY": policy},
            capture_output=True,
            text=True,
        )
    summary = result.stdout.splitlines()[0] if result.stdout else ""
    if result.returncode or f"colourised {len(paths)} of {len(paths)}" not in summary:
        raise RuntimeError(f"polychrome colorize failed: {summary}\n{result.stderr}")
    return float(summary.rsplit("(", 1)[1].split()[0])


def threads_table(paths: list[Path], args: argparse.Namespace) -> None:
    """``polychrome colorize``'s rate by torch's threads and OpenMP's wait policy, idle and beside busy
    neighbours: each setting timed in turn, ``ROUNDS`` times, the median of each printed."""
    print(
        "\n`polychrome colorize PHOTOS --threads N` by torch's threads and how waiting OpenMP threads wait (the "
        f"rate it reports; median of {ROUNDS} rounds taken in turn):\n\n| threads | OMP_WAIT_POLICY | idle | beside "
        "two training-like torch jobs |\n|---:|---|---:|---:|"
    )
    settings = [(1, "ACTIVE"), (2, "ACTIVE"), (2, "PASSIVE")]
    rates: dict[tuple, list[float]] = {}
    for _ in range(ROUNDS):
        for busy in (False, True):
            with busy_neighbours() if busy else nullcontext():
                for setting in settings:
                    rate = throughput(*setting, paths, args.batch_size, args.model)
                    rates.setdefault((*setting, busy), []).append(rate)
    for count, policy in settings:
        idle, shared = (statistics.median(rates[count, policy, busy]) for busy in (False, True))
        print(f"| {count} | {policy} | {idle:.2f} images/s | {shared:.2f} images/s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=None, help="folder of photos (default: mixed_photos())")
    parser.add_argument("--model", default="default")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2, help="best of N timings each")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-threads", action="store_true", help="leave out the table of torch's threads")
    parser.add_argument("--threads", type=int, help="torch's threads (default: as polychrome colorize chooses)")
    args = parser.parse_args()
    threads = inference_threads(args.threads)  # as `polychrome colorize` sets up its process

    if args.images is None:
        paths, where = mixed_photos(), f"mixed_photos() of {data_root()}"
    else:
        paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
        where = str(args.images)
    sizes = [np.prod(Image.open(p).size) for p in paths]
    pipeline = load_colorizer(args.model)
    t = pipeline.temperature
    print(
        f"{len(paths)} photos from {where} ({min(sizes) / 1e6:.3f} to {max(sizes) / 1e6:.2f} MP, "
        f"{np.mean(sizes) / 1e6:.2f} MP on average), model {args.model} (input {pipeline.input_size}px), "
        f"torch {torch.__version__}, {threads} of {os.cpu_count()} cores' threads for the network"
    )

    def ours_with(chosen):
        return lambda out: ours(chosen, paths, out, None, args.batch_size)

    seconds = {
        "reference (skimage, one by one)": timed(lambda out: reference(pipeline, paths, out, t), args.repeat),
        "polychrome colorize (torch)": timed(ours_with(pipeline), args.repeat),
    }
    with tempfile.TemporaryDirectory() as folder_onnx:
        from polychrome.onnx_backend import export_onnx

        onnx_path = export_onnx(pipeline.model, Path(folder_onnx) / "model.onnx", pipeline.input_size, t)
        onnx_pipeline = load_colorizer(str(onnx_path), backend="onnx")
        seconds["polychrome colorize (onnxruntime)"] = timed(ours_with(onnx_pipeline), args.repeat)
        difference = onnx_difference(pipeline, onnx_pipeline, paths)
    base = seconds["reference (skimage, one by one)"]
    print("\n| pipeline | images/s | speed-up vs reference |\n|---|---:|---:|")
    for name, s in seconds.items():
        print(f"| {name} | {len(paths) / s:.2f} | {base / s:.2f}x |")
    print(f"\nonnxruntime vs PyTorch: largest ab difference {difference:.2e} (Lab units) on these photos")

    if not args.skip_threads:
        threads_table(paths, args)

    print("\nwhere the time goes, one thread, one step after another:\n\n| step | ms per image |\n|---|---:|")
    for name, milliseconds in parts(pipeline, paths, args.batch_size).items():
        print(f"| {name} | {milliseconds:.2f} |")

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
