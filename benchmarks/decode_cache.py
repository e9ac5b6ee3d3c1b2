"""Images/s of decoding JPEGs every epoch vs reading polychrome's memory-mapped decoded-image cache.

Both paths give the same (N, 3, size, size) uint8 batches of the same images through the same
DataLoader settings; they are timed one after the other in this run, so the ratio is what to quote.

    python benchmarks/decode_cache.py --spec cifar10@train --size 32 --limit 20000 --workers 2
"""

from __future__ import annotations

import argparse
import time

from torch.utils.data import DataLoader, Subset

from polychrome.data import DecodedImages, collate_images, eval_transform, open_dataset
from polychrome.data.datasets import SkipUnreadable


def images_per_second(dataset, batch_size: int, workers: int) -> float:
    loader = DataLoader(SkipUnreadable(dataset), batch_size=batch_size, num_workers=workers, collate_fn=collate_images)
    start, seen = time.perf_counter(), 0
    for batch in loader:
        seen += len(batch.labels)
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="cifar10@train")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=20_000, help="images timed on each path")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    start = time.perf_counter()
    cached = DecodedImages.build(args.spec, args.size, workers=args.workers)
    print(
        f"cache ready in {time.perf_counter() - start:.1f} s ({len(cached)} images at {args.size}px, {cached.folder})"
    )
    indices = range(min(args.limit, len(cached)))
    decode = images_per_second(
        Subset(open_dataset(args.spec, eval_transform(args.size)), indices), args.batch_size, args.workers
    )
    memmap = images_per_second(Subset(cached, indices), args.batch_size, args.workers)
    print(f"decode JPEG + resize : {decode:10.0f} images/s")
    print(f"decoded-image cache  : {memmap:10.0f} images/s")
    print(f"ratio cache / decode : {memmap / decode:10.1f}x  ({len(indices)} images each, {args.workers} workers)")


if __name__ == "__main__":
    main()
