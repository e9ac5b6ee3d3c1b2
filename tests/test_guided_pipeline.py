"""Colour hints and reference photos through the one colourisation path (the Python API)."""

import numpy as np
import pytest
import torch

from polychrome.colorize import load_colorizer
from polychrome.hints import GlobalHint, LocalHint
from polychrome.models import build_model
from polychrome.pipeline import ColorizationPipeline


def photo(height=48, width=64):
    """A gray photo: two flat regions, dark on the left, light on the right."""
    image = np.full((height, width, 3), 60, np.uint8)
    image[:, width // 2 :] = 190
    return image


def ab_at(rgb: np.ndarray, x: int, y: int) -> torch.Tensor:
    from polychrome.color import uint8_to_lab

    return uint8_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0, 1:, y, x]


def test_a_model_without_hints_refuses_them_in_one_line_naming_those_that_take_them():
    colorizer = load_colorizer("default")
    for call in (
        lambda: colorizer.colorize(photo(), hints=[(3, 4, (255, 0, 0))]),
        lambda: colorizer.predict([colorizer.prepare(photo())], [[LocalHint.from_rgb(3, 4, (255, 0, 0))]]),
    ):
        with pytest.raises(ValueError) as error:
            call()
        assert "\n" not in str(error.value) and "default takes no colour hints" in str(error.value)
        assert "guided" in str(error.value) and "levin" in str(error.value)
    with pytest.raises(ValueError, match="takes no reference photo; models that do: guided"):
        ColorizationPipeline(build_model("levin"), name="levin").colorize(photo(), reference=photo())


def test_levin_colours_each_region_from_its_own_click_as_tuples_or_dicts():
    levin = ColorizationPipeline(build_model("levin"), name="levin")
    red, blue = (200, 30, 30), (30, 30, 200)
    out = levin.colorize(photo(), hints=[(5, 5, red), {"x": 60, "y": 40, "rgb": list(blue)}])
    assert out.shape == (48, 64, 3)
    left, right = ab_at(out, 10, 30), ab_at(out, 50, 10)
    assert left[0] > 30 and right[1] < -30  # red on the dark side, blue on the light side: the edge holds
    assert np.array_equal(levin.colorize(photo()), photo())  # no hints: gray, as it came


def test_hints_outside_the_photo_are_refused_naming_the_entry():
    levin = ColorizationPipeline(build_model("levin"), name="levin")
    with pytest.raises(ValueError, match=r"hints\[1\]: x=64 is outside the image"):
        levin.colorize(photo(), hints=[(1, 1, (255, 0, 0)), (64, 1, (255, 0, 0))])


def test_a_hint_taking_network_sees_hints_at_its_own_size_and_a_reference_changes_its_colours():
    torch.manual_seed(0)
    model = build_model("unet_guided", channels=(4, 8, 16), head="regression").with_card(input_size=32).eval()
    pipeline = ColorizationPipeline(model, name="test")
    plain = pipeline.colorize(photo())
    hinted = pipeline.colorize(photo(), hints=[(5, 5, (200, 30, 30))])
    steered = pipeline.colorize(
        photo(), hints=[(5, 5, (200, 30, 30))], reference=GlobalHint(torch.full((313,), 1 / 313), 40.0)
    )
    assert plain.shape == hinted.shape == (48, 64, 3)
    assert not np.array_equal(plain, hinted) and not np.array_equal(hinted, steered)


def test_hint_propagation_makes_the_colour_at_a_click_the_clicked_one():
    """Through the API; tests/test_one_path.py holds the command line and the page to the API's pixels."""
    torch.manual_seed(0)
    network = build_model("unet_guided", channels=(4, 8, 16), head="regression").with_card(input_size=32).eval()
    propagated = ColorizationPipeline(network.with_card(hint_propagation="levin"), name="test")
    plain = ColorizationPipeline(network, name="test")
    red, image = (200, 30, 30), photo(64, 64)
    hint = [(10, 30, red)]
    target = ab_at(np.array([[red]], np.uint8), 0, 0)
    missed = (ab_at(plain.colorize(image, hints=hint), 10, 30) - target).norm()
    corrected = (ab_at(propagated.colorize(image, hints=hint), 10, 30) - target).norm()
    assert missed > 20 and corrected < missed / 4  # an untrained network ignores the click; the correction does not
    assert np.array_equal(propagated.colorize(image), plain.colorize(image))  # no hints: nothing to propagate


def test_the_correction_factorises_beside_the_network_and_leaves_no_thread_behind(monkeypatch):
    """The LU runs on a thread of its own while the network runs and is joined by the prediction: a DataLoader
    forking its workers afterwards finds no thread of ours (a pool's idle worker made every later fork print an
    ignored SystemError). An error in the factorisation reaches the caller."""
    import threading

    import numpy as np
    import pytest

    from polychrome.models import load_model
    from polychrome.pipeline import ColorizationPipeline

    photo = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    pipeline = ColorizationPipeline(load_model("guided"))
    assert pipeline.colorize(photo, hints=[(3, 4, (200, 30, 40))]).shape == (48, 64, 3)
    assert not [t for t in threading.enumerate() if t.name == "polychrome-levin"]
    with pytest.raises(ValueError, match="hint_decay_falloff must be >= 0"):
        load_model("guided").with_card(hint_decay_falloff=float("nan"))

    def fails(*args, **kwargs):
        raise RuntimeError("Factor is exactly singular")

    monkeypatch.setattr("polychrome.pipeline.levin_systems", fails)
    with pytest.raises(RuntimeError, match="singular"):
        pipeline.colorize(photo, hints=[(3, 4, (200, 30, 40))])


def test_the_correction_frees_its_factors_on_the_thread_that_made_them(monkeypatch):
    """scipy's SuperLU frees a factorisation only on the thread that made it (its memory is booked per thread): freed
    on the caller's thread, each click's LU stayed allocated (an evaluation with 10 clicks grew by 120 MB a BSDS500
    photo until it ran out of memory). The systems' last reference must die on the worker, inside the prediction."""
    import threading

    import numpy as np

    from polychrome import levin
    from polychrome.models import load_model
    from polychrome.pipeline import ColorizationPipeline

    freed_on: list[str] = []

    class Watched(list):
        def __del__(self) -> None:
            freed_on.append(threading.current_thread().name)

    monkeypatch.setattr(
        "polychrome.pipeline.levin_systems", lambda *args, **kwargs: Watched(levin.levin_systems(*args, **kwargs))
    )
    photo = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    pipeline = ColorizationPipeline(load_model("guided"))
    for _ in range(2):
        pipeline.colorize(photo, hints=[(3, 4, (200, 30, 40))])
    assert freed_on == ["polychrome-levin", "polychrome-levin"]


def _settled(pipeline: ColorizationPipeline) -> None:
    """Waits until the pipeline's correction thread has run every job queued so far (the grids made ahead)."""
    import threading
    import time

    time.sleep(0.05)  # the ahead timer (AHEAD_SECONDS set to 0) queues its job
    done = threading.Event()
    pipeline._corrections.submit(done.set)
    assert done.wait(30)


def test_an_interactive_pipeline_makes_each_clicks_grid_ahead_and_gives_the_same_pixels(monkeypatch):
    """The guided page's pipeline (``interactive``) factorises the whole grid the next click needs while the person
    chooses it, on one long-lived thread that also frees it: the colours are those of the one-shot path, bit for
    bit, click after click, and each click after the first finds its grid made."""
    import threading

    from polychrome import levin
    from polychrome import pipeline as pipeline_module

    made: list[tuple[str, float]] = []

    def watched_grid(luminance, decay, *args):
        made.append((threading.current_thread().name, decay))
        return levin.levin_grid(luminance, decay, *args)

    monkeypatch.setattr(pipeline_module, "levin_grid", watched_grid)
    monkeypatch.setattr(pipeline_module._CorrectionThread, "AHEAD_SECONDS", 0.0)
    image = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    clicks = [(5, 6, (200, 40, 40)), (50, 30, (40, 200, 40)), (20, 40, (40, 40, 200)), (60, 5, (220, 220, 30))]
    one_shot, interactive = load_colorizer("guided"), load_colorizer("guided").interactive()
    interactive.colorize(image)  # the page's first render, without hints: the first click's grid is made ahead
    _settled(interactive)
    card = interactive.card
    for count in range(1, len(clicks) + 1):
        decay = levin.falling_decay(card.hint_decay, card.hint_decay_falloff, count)
        assert ("polychrome-corrections", decay) in made, f"click {count}'s grid was not made ahead"
        assert np.array_equal(
            interactive.colorize(image, hints=clicks[:count]), one_shot.colorize(image, hints=clicks[:count])
        )
        assert [d for _, d in made].count(decay) == 1  # the click found it made
        _settled(interactive)


def test_an_interactive_pipelines_grids_die_on_its_thread_which_ends_when_idle(monkeypatch):
    """SuperLU frees memory only on the thread that made it: the grids an interactive pipeline keeps are dropped on
    its correction thread, whether pushed out by newer ones or when the thread ends after IDLE_SECONDS."""
    import dataclasses
    import threading
    import time

    from polychrome import levin
    from polychrome import pipeline as pipeline_module

    freed_on: list[str] = []

    @dataclasses.dataclass(frozen=True)
    class WatchedGrid(levin.LevinGrid):
        def __del__(self) -> None:
            freed_on.append(threading.current_thread().name)

    def watched_grid(*args):
        grid = levin.levin_grid(*args)
        return WatchedGrid(grid.affinity, grid.decay, grid.solve)

    monkeypatch.setattr(pipeline_module, "levin_grid", watched_grid)
    monkeypatch.setattr(pipeline_module._CorrectionThread, "AHEAD_SECONDS", 0.0)
    monkeypatch.setattr(pipeline_module._CorrectionThread, "IDLE_SECONDS", 0.5)
    image = np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    pipeline = load_colorizer("guided").interactive()
    spots = [(4 + 9 * i, 5 + 6 * i, (200, 40, 40)) for i in range(6)]  # six regions: six decays, more than GRIDS
    for count in range(1, len(spots) + 1):
        pipeline.colorize(image, hints=spots[:count])
        _settled(pipeline)
    assert freed_on and set(freed_on) == {"polychrome-corrections"}  # pushed out
    evicted = len(freed_on)
    deadline = time.monotonic() + 10
    while pipeline._corrections._thread is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pipeline._corrections._thread is None
    assert len(freed_on) == evicted + pipeline._corrections.GRIDS and set(freed_on) == {"polychrome-corrections"}
    assert np.array_equal(
        pipeline.colorize(image, hints=spots[:2]), load_colorizer("guided").colorize(image, hints=spots[:2])
    )


def test_a_failing_correction_job_leaves_the_thread_serving_the_next(caplog):
    """A job that raised would otherwise end the thread with its queue unread, and every later click would wait on
    it for ever."""
    import threading

    from polychrome.pipeline import _CorrectionThread

    corrections, served = _CorrectionThread(), threading.Event()

    def broken() -> None:
        raise RuntimeError("a broken job")

    corrections.submit(broken)
    corrections.submit(served.set)
    assert served.wait(10)
    assert "a hint-correction job failed" in caplog.text
