"""Can decoding alone take the blotches out of the bundled model? Measured on BSDS500 val as the selection
measures (experiments/default_model.py): raw and rebalanced AuC and false colour, at T = 0.38 and 0.6.

Variants of the shipped run's network, all on the predicted distributions before the annealed mean:
averaging with its horizontally flipped prediction (test-time augmentation), averaging with other
candidates (an ensemble), and multiplying with the plain-CE model (a product of experts: a colour survives
only where the model trained without rebalancing also finds it likely):

    python experiments/decoding_variants.py --report docs/default-model/decoding-variants.md
    python experiments/decoding_variants.py --figure docs/default-model/decoding-variants.jpg   # 8 val photos, by eye
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor, nn

from polychrome.data import open_dataset
from polychrome.evaluate import evaluate
from polychrome.metrics import as_gray
from polychrome.models import LoadedModel, load_model
from polychrome.models.base import Colorizer
from polychrome.pipeline import ColorizationPipeline

SHIPPED = "runs/default-mix075-long"
SHOWN = {
    "shipped": "shipped",
    "shipped + third leg + width 0.5 (mean)": "mean of 3 runs",
    "shipped x plain CE (product)": "x plain CE",
}  # variant -> its column in the figure (at T 0.6)
VARIANTS = {  # name -> (runs, flip, product)
    "shipped": ([SHIPPED], False, False),
    "shipped + its flip": ([SHIPPED], True, False),
    "shipped + third leg (mean)": ([SHIPPED, "runs/default-mix075-x3"], False, False),
    "shipped + third leg + width 0.5 (mean)": ([SHIPPED, "runs/default-mix075-x3", "runs/default-w05"], False, False),
    "shipped + plain CE (mean)": ([SHIPPED, "runs/default-ce"], False, False),
    "shipped x plain CE (product)": ([SHIPPED, "runs/default-ce"], False, True),
}


class Combined(Colorizer):
    """Members' distributions over the same bins, averaged (or multiplied: a geometric mean); logits out."""

    def __init__(self, members: list[Colorizer], flip: bool = False, product: bool = False):
        super().__init__()
        self.members, self.flip, self.product = nn.ModuleList(members), flip, product

    def forward(self, lightness: Tensor) -> Tensor:
        logs = []
        for member in self.members:
            logs.append(member(lightness).float().log_softmax(1))
            if self.flip:
                logs.append(member(lightness.flip(-1)).float().log_softmax(1).flip(-1))
        stacked = torch.stack(logs)
        return stacked.mean(0) if self.product else stacked.logsumexp(0)  # both normalised by the softmax after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="folder:bsds500/images/val")
    parser.add_argument("--report", help="measure every variant; write the table here")
    parser.add_argument("--figure", help="draw a few variants on --examples photos (drawn with seed 0) here")
    parser.add_argument("--examples", type=int, default=8)
    args = parser.parse_args()
    if args.report:
        report(args.data, args.report)
    if args.figure:
        figure(args.data, args.figure, args.examples)


def combined(name: str) -> LoadedModel:
    """The variant's network under its first member's card (input size, temperature), named for the variant."""
    runs, flip, product = VARIANTS[name]
    members = [load_model(run) for run in runs]
    return LoadedModel(Combined(members, flip, product), members[0].card.replace(name=name)).eval()


def report(data: str, path: str) -> None:
    lines = [
        f"Decoding variants on `{data}` (experiments/decoding_variants.py).",
        "",
        "| variant | T | AuC raw | AuC rebalanced | colourfulness | false colour % |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in VARIANTS:
        model = combined(name)
        for temperature in (0.38, 0.6):
            r = evaluate(model, data, temperature=temperature, workers=1)
            lines.append(
                f"| {name} | {temperature} | {r['auc_raw']:.2f} | {r['auc_rebalanced']:.2f} | "
                f"{r['colorfulness']:.1f} | {100 * r['false_color']:.2f} |"
            )
            print(lines[-1], flush=True)
    Path(path).write_text("\n".join(lines) + "\n")


def figure(data: str, path: str, count: int) -> None:
    from PIL import Image

    from polychrome.viz import image_grid

    dataset = open_dataset(data)
    photos = [
        dataset[i][0] for i in torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:count].tolist()
    ]
    models = [combined(name) for name in SHOWN]
    rows = []
    for photo in photos:
        rows.append(
            [
                as_gray(photo),
                *[
                    ColorizationPipeline(model, device=None).colorize_images([photo], temperature=0.6)[0]
                    for model in models
                ],
                photo,
            ]
        )
    png = Path(path).with_suffix(".png")
    image_grid(rows, png, ["gray", *SHOWN.values(), "truth"], cell=2.6)
    if png != Path(path):
        Image.open(png).convert("RGB").save(path, quality=85)
        png.unlink()
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
