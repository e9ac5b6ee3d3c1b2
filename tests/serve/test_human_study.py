"""The "real or fake?" study: plans, answers, fool rates (library), and the same through the HTTP routes."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

import polychrome
from polychrome import human_study as hs
from polychrome.models import build_model, save_weights
from polychrome.serve.app import create_app
from polychrome.serve.study_routes import COOKIE

PRACTICE, PAIRS = 2, 4


def build_study(tmp_path: Path, exposure: float = 1.0, sources: list[Path] = ()) -> tuple[hs.Store, Path, list[str]]:
    """Study "demo": six photos (``sources``, else generated), the ``gray`` baseline and a tiny untrained
    network; returns (store, data dir, models)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        image = (
            Image.open(sources[i])
            if sources
            else Image.fromarray(rng.integers(0, 256, (50 + i, 80, 3), dtype=np.uint8))
        )
        image.save(photos / f"photo{i}.png")
    tiny = tmp_path / "tiny.safetensors"
    save_weights(build_model("eccv16", width=0.125), tiny, input_size=16)
    store = hs.open_store(tmp_path / "study.sqlite")
    models = ["gray", str(tiny)]
    hs.create_study(
        store,
        "demo",
        photos,
        models,
        pairs=PAIRS,
        practice=PRACTICE,
        exposure=exposure,
        data_dir=tmp_path / "data",
        max_side=256 if sources else 64,
    )
    return store, tmp_path / "data", models


def study_app(store: hs.Store, data_dir: Path, admin_token: str | None = "secret") -> FastAPI:
    """The whole web app with the study mounted (its models load on first use, so none is loaded here)."""
    return create_app(models=["gray"], db=store, study_data=data_dir, admin_token=admin_token)


@pytest.fixture
def study(tmp_path):
    return build_study(tmp_path)


def trials_of(store: hs.Store, participant: str) -> list[hs.Trial]:
    with store.session() as session:
        return list(
            session.scalars(select(hs.Trial).where(hs.Trial.participant_id == participant).order_by(hs.Trial.position))
        )


def run_participant(store: hs.Store, participant: str, side: str = "left") -> None:
    while (trial := hs.next_trial(store, participant)) is not None:
        hs.answer(store, participant, trial["trial"], side)


def test_create_study_colourises_every_photo_ahead_of_time(tmp_path):
    loaded = []

    def counting(name: str):
        loaded.append(name)
        return polychrome.load_colorizer(name)

    store = hs.open_store(tmp_path / "s.sqlite")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((90, 120, 3), np.uint8) + 100).save(photos / "wide.png")
    Image.fromarray(np.zeros((30, 20, 3), np.uint8) + 50).save(photos / "small.jpg")
    study = hs.create_study(
        store, "s", photos, ["gray"], pairs=1, practice=1, data_dir=tmp_path / "data", colorizer=counting, max_side=64
    )

    assert loaded == ["gray"]  # each model loaded once, used for every photo
    for photo in study.photos:
        real = Image.open(tmp_path / "data" / "s" / photo.real)
        fake = Image.open(tmp_path / "data" / "s" / photo.colorized["gray"])
        assert real.format == fake.format == "PNG" and real.size == fake.size
    sizes = {photo.key: Image.open(tmp_path / "data" / "s" / photo.real).size for photo in study.photos}
    assert sizes == {"wide.png": (64, 48), "small.jpg": (20, 30)}  # shrunk to max_side, never enlarged


def test_create_study_refuses_too_few_photos_a_taken_name_and_a_bad_name(study, tmp_path):
    store, data, _ = study
    with pytest.raises(hs.StudyError, match=r"has 6 photos.*2 practice \+ 5 test = 7"):
        hs.create_study(store, "other", tmp_path / "photos", ["gray"], pairs=5, practice=2, data_dir=data)
    with pytest.raises(hs.StudyError, match="already exists"):
        hs.create_study(store, "demo", tmp_path / "photos", ["gray"], pairs=4, practice=2, data_dir=data)
    with pytest.raises(hs.StudyError, match="study name"):
        hs.create_study(store, "../escape", tmp_path / "photos", ["gray"], pairs=4, practice=2, data_dir=data)
    assert isinstance(hs.StudyError("x"), ValueError)


def test_plans_rotate_the_models_and_never_repeat_a_photo(study):
    store, _, models = study
    participants = [hs.start_participant(store, "demo") for _ in range(4)]
    assert len(set(participants)) == 4
    by_position = Counter()
    for k, participant in enumerate(participants):
        trials = trials_of(store, participant)
        assert [t.phase for t in trials] == ["practice"] * PRACTICE + ["test"] * PAIRS
        assert len({t.photo_id for t in trials}) == len(trials)  # each photo at most once
        assert [t.model for t in trials] == [models[(k + i) % len(models)] for i in range(len(trials))]
        assert Counter(t.model for t in trials if t.phase == "test") == {m: PAIRS // len(models) for m in models}
        by_position.update((t.position, t.model) for t in trials)
    assert set(by_position.values()) == {2}  # every model at every position, twice over four participants
    sides = Counter(t.real_side for p in participants for t in trials_of(store, p))
    assert set(sides) == {"left", "right"}


def test_answers_are_validated(study):
    store, _, _ = study
    me, other = hs.start_participant(store, "demo"), hs.start_participant(store, "demo")
    mine, theirs = trials_of(store, me), trials_of(store, other)

    with pytest.raises(hs.Conflict, match="never shown"):
        hs.answer(store, me, mine[0].id, "left")
    first = hs.next_trial(store, me)
    assert first["trial"] == mine[0].id and first["phase"] == "practice" and first["exposure"] == 1.0
    with pytest.raises(hs.StudyError, match="'left' or 'right'"):
        hs.answer(store, me, mine[0].id, "up")
    with pytest.raises(hs.NotFound, match="not one of this participant's trials"):
        hs.answer(store, me, theirs[0].id, "left")
    with pytest.raises(hs.Conflict, match="out of order"):
        hs.answer(store, me, mine[1].id, "left")
    with pytest.raises(hs.NotFound, match="unknown participant"):
        hs.answer(store, "nobody", mine[0].id, "left")

    result = hs.answer(store, me, mine[0].id, "left")
    assert result == {"correct": mine[0].real_side == "left", "phase": "practice", "real_side": mine[0].real_side}
    with pytest.raises(hs.Conflict, match="already answered"):
        hs.answer(store, me, mine[0].id, "right")
    assert hs.next_trial(store, me)["trial"] == mine[1].id


def test_response_time_is_measured_on_the_server(study):
    store, _, _ = study
    participant = hs.start_participant(store, "demo")
    trial = hs.next_trial(store, participant)
    time.sleep(0.05)
    assert hs.next_trial(store, participant)["trial"] == trial["trial"]  # a reload keeps the first shown_at
    time.sleep(0.15)
    hs.answer(store, participant, trial["trial"], "left")
    (row,) = [t for t in trials_of(store, participant) if t.id == trial["trial"]]
    assert 200 <= row.response_ms < 2000
    assert row.response_ms == round((row.answered_at - row.shown_at).total_seconds() * 1000)


def test_fool_rates_csv_and_figure(study, tmp_path):
    store, _, models = study
    participants = [hs.start_participant(store, "demo") for _ in range(3)]
    for participant in participants:
        run_participant(store, participant, side="left")  # always "left": fooled exactly when the real photo is right
    assert hs.next_trial(store, participants[0]) is None

    tests = [t for p in participants for t in trials_of(store, p) if t.phase == "test"]
    rates = hs.fool_rates(store, "demo", bootstrap=500, seed=1)
    assert [r["model"] for r in rates] == models
    for rate in rates:
        judged = [t for t in tests if t.model == rate["model"]]
        assert rate["judgements"] == len(judged) == 6 and rate["participants"] == 3
        assert rate["fool_rate"] == sum(t.real_side == "right" for t in judged) / len(judged)
        assert rate["ci_low"] <= rate["fool_rate"] <= rate["ci_high"]
    assert hs.fool_rates(store, "demo", bootstrap=500, seed=1) == rates  # seeded: the same intervals every time

    hs.results_csv(store, "demo", tmp_path / "results.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text())))
    assert len(rows) == 3 * (PRACTICE + PAIRS) and tuple(rows[0]) == hs.CSV_COLUMNS
    assert Counter(r["phase"] for r in rows) == {"practice": 3 * PRACTICE, "test": 3 * PAIRS}
    assert all(r["answer"] == "left" and r["fooled"] == str(int(r["real_side"] == "right")) for r in rows)

    from polychrome.viz import plot_fool_rates

    plot_fool_rates(rates, tmp_path / "rates.png")
    assert Image.open(tmp_path / "rates.png").format == "PNG"


def test_sqlite_store_is_in_wal_mode_with_foreign_keys(study, tmp_path):
    store, _, _ = study
    assert sqlite3.connect(tmp_path / "study.sqlite").execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_http_study_flow_and_errors(study):
    store, data, _ = study
    app = study_app(store, data)
    alice, bob = TestClient(app), TestClient(app)

    page = alice.get("/study/demo?exposure=0")
    assert page.status_code == 200 and "Which one is real?" in page.text and COOKIE not in page.cookies
    assert "start the study first" in alice.get("/api/study/demo/next").json()["error"]  # not started
    assert alice.get("/api/study/demo/next").status_code == 401

    started = alice.post("/api/study/demo/start").json()
    assert alice.cookies[COOKIE] == started["participant"] and not started["resumed"]
    assert alice.post("/api/study/demo/start").json() == {"participant": started["participant"], "resumed": True}
    bob.post("/api/study/demo/start")

    pair = alice.get("/api/study/demo/next?exposure=0").json()
    assert pair["exposure"] == 1.0 and pair["phase"] == "practice"  # the stored plan wins over the query
    for side in ("left", "right"):
        image = alice.get(pair[side])
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert alice.post("/api/study/demo/answer", json={"trial": pair["trial"], "side": "up"}).status_code == 400
    assert alice.post("/api/study/demo/answer", json={"side": "left"}).status_code == 400
    assert alice.post("/api/study/demo/answer", json={"trial": pair["trial"] + 1, "side": "left"}).status_code == 409
    bob_pair = bob.get("/api/study/demo/next").json()
    assert alice.post("/api/study/demo/answer", json={"trial": bob_pair["trial"], "side": "left"}).status_code == 404
    practice = alice.post(
        "/api/study/demo/answer", json={"trial": pair["trial"], "side": "left", "response_ms": 1}
    ).json()
    assert set(practice) == {"correct", "phase", "real_side"}
    repeat = alice.post("/api/study/demo/answer", json={"trial": pair["trial"], "side": "left"})
    assert repeat.status_code == 409 and "already answered" in repeat.json()["error"]
    assert trials_of(store, started["participant"])[0].response_ms != 1  # the client's own timing is ignored

    answers = []
    while not (pair := alice.get("/api/study/demo/next").json())["done"]:
        answers.append(alice.post("/api/study/demo/answer", json={"trial": pair["trial"], "side": "right"}).json())
    assert (
        answers[-PAIRS:] == [{"phase": "test", "recorded": True}] * PAIRS
    )  # no feedback on test pairs, not even in JSON


def test_a_page_that_lost_its_cookie_resumes_its_participant(study):
    store, data, _ = study
    app = study_app(store, data)
    page, stranger = TestClient(app), TestClient(app)
    participant = page.post("/api/study/demo/start").json()["participant"]
    first = page.get("/api/study/demo/next").json()
    page.post("/api/study/demo/answer", json={"trial": first["trial"], "side": "left"})

    page.cookies.clear()  # the browser dropped the cookie mid-study
    lost = page.get("/api/study/demo/next")
    assert lost.status_code == 401 and "start the study first" in lost.json()["error"]
    again = page.post("/api/study/demo/start", json={"participant": participant}).json()
    assert again == {"participant": participant, "resumed": True} and page.cookies[COOKIE] == participant
    assert page.get("/api/study/demo/next").json()["position"] == 1  # where they were, not a new plan

    made_up = stranger.post("/api/study/demo/start", json={"participant": "made-up"})
    assert made_up.status_code == 401 and "start again" in made_up.json()["error"] and COOKIE not in stranger.cookies
    assert not stranger.post("/api/study/demo/start", json={}).json()["resumed"]  # a fresh start


def test_study_pages_show_html_errors_and_the_study_api_json(study):
    store, data, _ = study
    client = TestClient(study_app(store, data, admin_token="secret"))
    for address, status, words in [
        ("/study/nosuch", 404, "there is no study named &#39;nosuch&#39;"),
        ("/study/demo/results", 403, "results need the admin token"),
        ("/study/demo/results?token=wrong", 403, "results need the admin token"),
    ]:
        page = client.get(address)
        assert page.status_code == status and page.headers["content-type"].startswith("text/html"), address
        assert words in page.text and "<h1>" in page.text, page.text
    for address, status in [("/api/study/nosuch/next", 404), ("/api/study/demo/results.csv?token=wrong", 403)]:
        answer = client.get(address)
        assert answer.status_code == status and set(answer.json()) == {"error"}, address


def test_a_server_writes_no_study_store_until_a_study_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POLYCHROME_STUDIES", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    from polychrome.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert args.db is None and args.study_data is None  # resolved when the command runs, not at import
    assert hs.default_db() == tmp_path / "xdg" / "polychrome" / "studies" / "studies.sqlite"
    client = TestClient(create_app(models=["gray"], db=hs.default_db(), study_data=hs.studies_home(), admin_token="t"))
    assert client.get("/").status_code == 200
    assert "no study has been created" in client.get("/study/demo").text
    assert client.post("/api/study/demo/start").status_code == 404
    assert list(tmp_path.iterdir()) == []  # neither polychrome-studies/ here nor anything in the data folder
    monkeypatch.setenv("POLYCHROME_STUDIES", str(tmp_path / "mine"))
    assert hs.studies_home() == tmp_path / "mine"


def test_http_images_stay_inside_the_study_folder(study, tmp_path):
    store, data, _ = study
    (data / "secret.png").write_bytes(b"not for you")
    (data / "demo" / "link.png").symlink_to(data / "secret.png")
    client = TestClient(study_app(store, data))
    for key in ("..%2Fsecret.png", "..%2F..%2Fstudy.sqlite", "%2E%2E%2Fsecret.png", "link.png", "missing.png"):
        assert client.get(f"/study/demo/image/{key}").status_code == 404, key
    assert client.get("/study/demo/image/../../secret.png").status_code == 404
    assert client.get("/study/nope/image/x.png").status_code == 404


def test_http_results_need_the_admin_token(study):
    store, data, _ = study
    participant = hs.start_participant(store, "demo")
    run_participant(store, participant)
    client = TestClient(study_app(store, data, admin_token="secret"))
    assert client.get("/study/demo/results").status_code == 403
    assert client.get("/study/demo/results?token=wrong").status_code == 403
    assert client.get("/api/study/demo/results.csv?token=wrong").status_code == 403
    page = client.get("/study/demo/results?token=secret")
    assert page.status_code == 200 and 'id="fool-rates"' in page.text and "data:image/png;base64," in page.text
    table = client.get("/api/study/demo/results.csv?token=secret")
    assert table.headers["content-type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(table.text)))) == PRACTICE + PAIRS
    closed = TestClient(study_app(store, data, admin_token=None))
    assert closed.get("/study/demo/results?token=secret").status_code == 403


def test_the_cli_creates_a_study_and_reports_its_fool_rates(tmp_path, capsys):
    from polychrome.cli import main
    from polychrome.human_study import answer, next_trial, open_store, start_participant

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(3)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    db, data = tmp_path / "db" / "studies.sqlite", tmp_path / "data"
    common = ["--db", str(db)]
    assert main(["human-study", "results", "cli", *common]) == 2  # no database yet: one line, nothing created
    assert "no study database" in capsys.readouterr().err and not db.exists()
    assert (
        main(
            [
                "human-study",
                "create",
                "cli",
                "--images",
                str(photos),
                "--models",
                "gray",
                "--pairs",
                "3",
                "--practice",
                "1",
                "--exposure",
                "0",
                "--study-data",
                str(data),
                *common,
            ]
        )
        == 0
    )
    assert main(["human-study", "results", "cli", *common]) == 0  # before anyone has answered
    printed = capsys.readouterr().out
    assert "| gray | - | - | 0 | 0 |" in printed and "no judgements yet" in printed
    store = open_store(db)
    participant = start_participant(store, "cli")
    while (trial := next_trial(store, participant)) is not None:
        answer(store, participant, trial["trial"], "left")
    assert (
        main(
            [
                "human-study",
                "results",
                "cli",
                *common,
                "--csv",
                str(tmp_path / "rows.csv"),
                "--plot",
                str(tmp_path / "rates.png"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| gray |" in printed and "| 1 | 3 |" in printed
    assert len((tmp_path / "rows.csv").read_text().splitlines()) == 1 + 4  # header + practice and test judgements
    assert (
        main(
            [
                "human-study",
                "create",
                "cli",
                "--images",
                str(photos),
                "--models",
                "gray",
                "--pairs",
                "3",
                "--practice",
                "1",
                "--study-data",
                str(data),
                *common,
            ]
        )
        == 2
    )  # the name is taken: one line, no traceback
    assert "cli" in capsys.readouterr().err
