"""Can decoding alone take the blotches out of the bundled model? Measured on BSDS500 val as the selection
measures (experiments/default_model.py): raw and rebalanced AuC and false colour, at T = 0.38 and 0.6.

Variants of the shipped run's network, all on the predicted distributions before the annealed mean:
averaging with its horizontally flipped prediction (test-time augmentation), averaging with other
candidates (an ensemble), and multiplying with the plain-CE model (a product of experts: a colour survives
only where the model trained without rebalancing also finds it likely):

    python experiments/decoding_variants.py --report docs/default-model/decoding-variants.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor, nn

from polychrome.evaluate import evaluate
from polychrome.inference import load_model
from polychrome.models.base import Colorizer

SHIPPED = "runs/default-mix075-long"
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
        self.input_size = members[0].input_size

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
    parser.add_argument("--report", required=True)
    args = parser.parse_args()
    lines = [f"Decoding variants on `{args.data}` (experiments/decoding_variants.py).", "",
             "| variant | T | AuC raw | AuC rebalanced | colourfulness | false colour % |", "|---|---:|---:|---:|---:|---:|"]
    for name, (runs, flip, product) in VARIANTS.items():
        model = Combined([load_model(run) for run in runs], flip, product).eval()
        for temperature in (0.38, 0.6):
            r = evaluate(model, args.data, temperature=temperature, workers=1)
            lines.append(f"| {name} | {temperature} | {r['auc_raw']:.2f} | {r['auc_rebalanced']:.2f} | "
                         f"{r['colorfulness']:.1f} | {100 * r['false_color']:.2f} |")
            print(lines[-1], flush=True)
    Path(args.report).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
