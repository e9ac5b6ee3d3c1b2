"""The input size to run the bundled guided model at, chosen on BSDS500 val with 10 simulated hints (never test):
PSNR, mean ab error and raw AuC of the same weights at 128, 160, 192 and 256 px (docs/guided.md).

    python experiments/guided_size.py [--model guided] [--limit 40]
"""

from __future__ import annotations

import argparse

from polychrome.evaluate import HintProtocol, TruthCache, evaluate
from polychrome.models import load_model

SIZES = (128, 160, 192, 256)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="guided")
    parser.add_argument("--data", default="folder:bsds500/images/val")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--hints", type=int, default=10)
    args = parser.parse_args(argv)
    model, cache = load_model(args.model), TruthCache()
    print("size  PSNR  mean-ab-error  raw-AuC")
    for size in SIZES:
        hints = HintProtocol(args.hints, 0)
        result = evaluate(model, args.data, size=size, limit=args.limit, workers=1, cache=cache, hints=hints)
        print(f"{size:>4}  {result['psnr']:.2f}  {result['mean_ab_error']:.2f}  {result['auc_raw']:.2f}", flush=True)


if __name__ == "__main__":
    main()
