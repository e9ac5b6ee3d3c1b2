"""A small copy of photo folders from the data root, for a machine that cannot read ../shared/data.

The lent GPU machine receives only the repository (64 MiB in all), so the photos a run trains on travel
inside it, in a git-ignored folder, shrunk: each photo is resized so its short side is ``--size`` pixels
(the training cache's size is enough: it never looks at more) and saved as JPEG under the same relative
path, so that ``POLYCHROME_DATA=OUT`` makes the usual dataset specs (``folder:imagenette2-224/train``)
find them. Photos that cannot be read are listed and skipped:

    python experiments/pack_data.py .carry/data imagenette2-224/train bsds500/images/val --size 72 --quality 70

It ends by saying how much a device call would carry with it (the repository's files plus ``.carry/``),
against the 64 MiB a call takes.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from PIL import Image

from polychrome.data.datasets import image_extensions
from polychrome.files import atomic_path
from polychrome.settings import data_root


def pack(
    folders: list[str], out: str | Path, size: int, quality: int = 70, root: Path | None = None
) -> tuple[int, list[str]]:
    """Shrunk JPEG copies of every photo under ``root / folder`` for each folder, at ``out / folder``.

    Returns (photos written, one line per photo that could not be read). A copy already there is kept,
    so an interrupted pack resumes."""
    root, out = Path(root or data_root()), Path(out)
    written, failed, extensions = 0, [], set(image_extensions())
    for folder in folders:
        source = root / folder
        if not source.is_dir():
            raise SystemExit(f"no folder {source}: give folders relative to the data root {root} (POLYCHROME_DATA)")
        for path in sorted(p for p in source.rglob("*") if p.suffix.lower() in extensions):
            target = (out / folder / path.relative_to(source)).with_suffix(".jpg")
            if target.is_file():
                continue
            try:
                with Image.open(path) as image:
                    image = image.convert("RGB")
                    scale = size / min(image.size)
                    if scale < 1:
                        image = image.resize(
                            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                            Image.Resampling.LANCZOS,
                        )
            except OSError as error:
                failed.append(f"{path}: {error}")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as temporary:
                image.save(temporary, format="JPEG", quality=quality)
            written += 1
    return written, failed


def travelling_bytes(carry: str = ".carry") -> int:
    """What a device call sends: the repository's tracked and untracked, not ignored files, plus ``carry``."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    files = [Path(p) for p in listed if p] + [p for p in Path(carry).rglob("*")]
    return sum(p.stat().st_size for p in files if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="the folder to write (git-ignored, e.g. .carry/data)")
    parser.add_argument("folders", nargs="+", help="folders relative to the data root")
    parser.add_argument(
        "--size", type=int, default=72, help="short side in pixels (photos smaller are kept as they are)"
    )
    parser.add_argument("--quality", type=int, default=70, help="JPEG quality")
    args = parser.parse_args()
    written, failed = pack(args.folders, args.out, args.size, args.quality)
    total = sum(f.stat().st_size for f in Path(args.out).rglob("*") if f.is_file())
    print(f"wrote {written} photos; {args.out} holds {total / 2**20:.1f} MiB")
    print(f"a device call carrying .carry/ would send {travelling_bytes() / 2**20:.1f} MiB (its limit: 64 MiB)")
    for line in failed:
        print("skipped", line)


if __name__ == "__main__":
    main()
