"""experiments/default_model.py keeps each candidate's evaluation, so adding a candidate costs one run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "experiments" / "default_model.py"


@pytest.fixture
def selection(monkeypatch):
    spec = importlib.util.spec_from_file_location("default_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    calls = []

    def fake_evaluate(model, data, temperature, workers):
        calls.append((model, data, temperature))
        return {measure: 1.0 for measure in module.MEASURES} | {"auc_rebalanced": 70.0 + len(calls)}

    loads = []
    monkeypatch.setattr(module, "load_model", lambda path: loads.append(path) or path)
    monkeypatch.setattr(module, "evaluate", fake_evaluate)
    module.loads = loads
    return module, calls


def _run(tmp_path: Path, weights: bytes) -> Path:
    (tmp_path / "run" / "checkpoints").mkdir(parents=True, exist_ok=True)
    (tmp_path / "run" / "checkpoints" / "best.ckpt").write_bytes(weights)
    return tmp_path / "run"


def test_a_measured_candidate_is_read_back_not_evaluated_again(selection, tmp_path):
    module, calls = selection
    run = _run(tmp_path, b"weights")
    first = module.evaluate_candidate(str(run), "folder:val", (0.6,))
    assert module.evaluate_candidate(str(run), "folder:val", (0.6,)) == first
    assert len(calls) == 1
    module.evaluate_candidate(str(run), "folder:val", (0.6, 1.0))  # another temperature: only it is measured
    module.evaluate_candidate(str(run), "folder:test", (0.6,))  # other data
    assert len(calls) == 3


def test_a_checkpoint_that_changed_is_evaluated_afresh(selection, tmp_path):
    module, calls = selection
    run = _run(tmp_path, b"weights")
    before = module.evaluate_candidate(str(run), "folder:val", (0.6,))
    _run(tmp_path, b"weights trained longer")
    after = module.evaluate_candidate(str(run), "folder:val", (0.6,))
    assert len(calls) == 2 and after != before


def test_a_candidate_is_loaded_once_for_all_its_temperatures(selection, tmp_path):
    module, calls = selection
    results = module.evaluate_candidate(str(_run(tmp_path, b"weights")), "folder:val", (0.1, 0.38, 1.0))
    assert [temperature for _, _, temperature in calls] == [0.1, 0.38, 1.0] and len(results) == 3
    assert len(module.loads) == 1


def test_a_kept_result_without_a_measure_the_rule_reads_is_measured_again(selection, tmp_path):
    module, calls = selection
    run = _run(tmp_path, b"weights")
    module.evaluate_candidate(str(run), "folder:val", (0.6,))
    (kept,) = (run / "selection").glob("*.json")
    kept.write_text(kept.read_text().replace('"false_color"', '"something_else"'))  # as an older evaluate wrote it
    assert "false_color" in module.evaluate_candidate(str(run), "folder:val", (0.6,))[0]
    assert len(calls) == 2


def _row(name, raw, rebalanced, false_color):
    return (name, "best.ckpt", 0.38, {"auc_raw": raw, "auc_rebalanced": rebalanced, "false_color": false_color})


def test_the_rule_keeps_raw_auc_and_breaks_rebalanced_ties_by_false_colour(selection):
    module, _ = selection
    gray = {"auc_raw": 89.0}
    rows = [
        _row("loses raw AuC", 87.5, 75.0, 0.01),
        _row("best rebalanced", 88.5, 73.1, 0.08),
        _row("tied, fewer blotches", 88.6, 73.0, 0.06),
        _row("clearly behind", 88.9, 72.5, 0.02),
    ]
    assert module.choose(rows, gray, raw_margin=1.0, tie_margin=0.2)[0] == "tied, fewer blotches"
    assert module.choose(rows, gray, raw_margin=1.0, tie_margin=0.05)[0] == "best rebalanced"
    assert module.choose(rows, gray, raw_margin=2.0, tie_margin=0.2)[0] == "loses raw AuC"
    with pytest.raises(SystemExit, match="no candidate keeps raw AuC"):
        module.choose(rows, {"auc_raw": 95.0}, raw_margin=1.0, tie_margin=0.2)


def test_a_weights_file_is_a_candidate_measured_beside_it_and_exported_at_the_chosen_temperature(selection, tmp_path):
    """A model trained elsewhere (experiments/gpu_default_model.py) joins the selection as its weights file."""
    import torch

    from polychrome.models import build_model, load_weights, save_weights
    from polychrome.models.weights import read_metadata

    module, calls = selection
    trained = save_weights(
        build_model("eccv16", width=0.125),
        tmp_path / "gpu" / "gpu-default.safetensors",
        64,
        temperature=0.38,
        half=True,
        commands='["polychrome train ..."]',
    )
    module.evaluate_candidate(str(trained), "folder:val", (0.6,))
    module.evaluate_candidate(str(trained), "folder:val", (0.6,))
    assert len(calls) == 1 and len(list((tmp_path / "gpu" / "selection").glob("*.json"))) == 1

    out = module.export(str(trained), str(tmp_path / "default.safetensors"), 0.6, half=True)
    metadata = read_metadata(out)
    assert (metadata["temperature"], metadata["input_size"], metadata["commands"]) == (
        "0.6",
        "64",
        '["polychrome train ..."]',
    )
    before, after = load_weights(trained), load_weights(out)
    assert all(torch.equal(before.state_dict()[k], v) for k, v in after.state_dict().items())
    from safetensors.torch import load_file

    assert {v.dtype for v in load_file(out).values()} == {
        torch.float16,
        torch.float32,
    }  # still half (BatchNorm stats float32)
    assert out.stat().st_mode & 0o777 == 0o644  # readable by others: safetensors alone writes 0600
