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
        return {"auc_rebalanced": 70.0 + len(calls), "tint": [1.0, 2.0]}

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
