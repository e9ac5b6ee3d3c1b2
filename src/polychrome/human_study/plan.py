"""Zhang et al. (2016)'s "real or fake?" study, run: preparing a study's images, each participant's
plan (which photo, which model, which side), and their answers.

Every colourisation is made when the study is created, so a participant never waits on a network. The
served images are PNG files with random names and the real photo is resized and re-encoded exactly like
the colourisations, so neither a URL nor a file format gives the answer away. Times are taken on the
server, so a response time cannot be faked by the page.
"""

from __future__ import annotations

import random
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image
from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from polychrome import load_colorizer
from polychrome.data import ImageReadError, load_rgb
from polychrome.data.images import image_extensions
from polychrome.human_study.store import (
    Conflict,
    NotFound,
    Participant,
    Store,
    Study,
    StudyError,
    StudyPhoto,
    Trial,
    find_study,
    utc_now,
)

SIDES = ("left", "right")
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a study name is used in URLs and as a folder name


def create_study(
    store: Store,
    name: str,
    images_dir: str | Path,
    models: list[str],
    pairs: int = 40,
    practice: int = 10,
    exposure: float = 1.0,
    data_dir: str | Path = "study-data",
    colorizer: Callable[[str], Any] = load_colorizer,
    max_side: int = 512,
) -> Study:
    """Colourise every photo of ``images_dir`` with every model now, into ``data_dir/<name>/``, and store the plan.

    A participant sees each photo once, so the folder needs ``practice + pairs`` photos. Photos are shrunk
    so the longer side is at most ``max_side``, and each model colourises the shrunk real photo, so both
    sides of a pair have the same size and the same lightness.
    """
    if not NAME.fullmatch(name):
        raise StudyError(f"a study name is 1 to 64 letters, digits, '-' or '_', got {name!r}")
    if not models or len(set(models)) != len(models):
        raise StudyError(f"give one or more distinct models, got {models}")
    if pairs < 1 or practice < 0 or exposure < 0 or max_side < 16:
        raise StudyError(
            f"need pairs >= 1, practice >= 0, exposure >= 0 and max_side >= 16, got {pairs}, {practice}, {exposure}, {max_side}"
        )
    if not Path(images_dir).is_dir():
        raise StudyError(f"{images_dir} is not a folder of photos")
    extensions = set(image_extensions())
    sources = sorted(p for p in Path(images_dir).iterdir() if p.is_file() and p.suffix.lower() in extensions)
    if len(sources) < practice + pairs:
        raise StudyError(
            f"{images_dir} has {len(sources)} photos, but each participant sees {practice} practice + "
            f"{pairs} test = {practice + pairs} different photos"
        )
    with store.session() as session:
        if session.scalar(select(Study.id).where(Study.name == name)) is not None:
            raise StudyError(f"a study named {name!r} already exists; choose another name")

    folder = Path(data_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    photos = [
        StudyPhoto(key=source.name, real=_save(_shrunk(source, max_side), folder), colorized={}) for source in sources
    ]
    for model in models:
        pipeline = colorizer(model)
        for photo in photos:
            real = np.array(Image.open(folder / photo.real).convert("RGB"))
            photo.colorized = photo.colorized | {model: _save(pipeline.colorize(real), folder)}

    study = Study(
        name=name, models=list(models), pairs=pairs, practice=practice, exposure=float(exposure), photos=photos
    )
    with store.session() as session:
        session.add(study)
        try:
            session.commit()
        except IntegrityError as error:
            raise StudyError(f"a study named {name!r} already exists; choose another name") from error
    return study


def _shrunk(path: Path, max_side: int) -> np.ndarray:
    try:
        image = Image.fromarray(load_rgb(path))
    except ImageReadError as error:
        raise StudyError(f"cannot use {path} in a study: {error.reason}") from error
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)  # only ever shrinks
    return np.asarray(image)


def _save(rgb: np.ndarray, folder: Path) -> str:
    """Write a PNG under a random name (which says nothing about what it shows) and return that name."""
    name = f"{secrets.token_hex(8)}.png"
    Image.fromarray(rgb).save(folder / name)
    return name


def start_participant(store: Store, name: str) -> str:
    """A new participant of study ``name`` with their whole plan; returns their random id.

    Participant ``k`` (0, 1, 2... in order of arrival) sees the photos in a random order seeded by their
    id, each at most once, and the i-th pair of their plan (practice included) shows model
    ``(k + i) % M``: each participant sees every model equally often (exactly, when M divides the number
    of pairs), and any M participants in a row cover every model at every position. Sides are random.
    """
    with store.session() as session:
        study = find_study(session, name)
        for _ in range(10):  # two arrivals may claim the same index; the unique constraint sends one round again
            index = session.scalar(
                select(func.count()).select_from(Participant).where(Participant.study_id == study.id)
            )
            participant = Participant(id=secrets.token_urlsafe(12), study_id=study.id, index=index)
            session.add(participant)
            session.add_all(_plan(study, participant))
            try:
                session.commit()
                return participant.id
            except IntegrityError:
                session.rollback()
    raise Conflict("too many participants arrived at once; try again")


def _plan(study: Study, participant: Participant) -> list[Trial]:
    rng = random.Random(participant.id)
    photos = rng.sample(study.photos, study.practice + study.pairs)
    return [
        Trial(
            participant_id=participant.id,
            position=i,
            phase="practice" if i < study.practice else "test",
            photo_id=photo.id,
            model=study.models[(participant.index + i) % len(study.models)],
            real_side=rng.choice(SIDES),
        )
        for i, photo in enumerate(photos)
    ]


def study_of(store: Store, participant: str) -> str:
    """The name of the study a participant belongs to; NotFound for an unknown id."""
    with store.session() as session:
        return _participant(session, participant).study.name


def _participant(session: Session, participant: str) -> Participant:
    found = session.get(Participant, participant)
    if found is None:
        raise NotFound("unknown participant: start the study first")
    return found


def _current(session: Session, participant: str) -> Trial | None:
    """The participant's first unanswered trial: the only one that may be shown or answered."""
    return session.scalar(
        select(Trial)
        .where(Trial.participant_id == participant, Trial.answered_at.is_(None))
        .order_by(Trial.position)
        .limit(1)
    )


def next_trial(store: Store, participant: str) -> dict | None:
    """The pair to show now, or None when the participant is done; the first serving sets ``shown_at``.

    Serving the same trial again (a reload) keeps the first ``shown_at``, so the response time counts
    from when the pair was first on screen.
    """
    with store.session() as session:
        study = _participant(session, participant).study
        trial = _current(session, participant)
        if trial is None:
            return None
        session.execute(update(Trial).where(Trial.id == trial.id, Trial.shown_at.is_(None)).values(shown_at=utc_now()))
        session.commit()
        fake = trial.photo.colorized[trial.model]
        left, right = (trial.photo.real, fake) if trial.real_side == "left" else (fake, trial.photo.real)
        return {
            "trial": trial.id,
            "phase": trial.phase,
            "position": trial.position,
            "total": study.practice + study.pairs,
            "practice": study.practice,
            "pairs": study.pairs,
            "left": left,
            "right": right,
            "exposure": study.exposure,
        }


def answer(store: Store, participant: str, trial_id: int, side: str) -> dict:
    """Record which side the participant took for real; returns ``{correct, phase, real_side}``.

    Only the participant's current trial can be answered, once, and only after it was shown: practice
    answers therefore all come before test answers, and nobody can skip ahead or change their mind.
    """
    if side not in SIDES:
        raise StudyError(f"side must be 'left' or 'right', got {side!r}")
    with store.session() as session:
        _participant(session, participant)
        trial = session.get(Trial, trial_id)
        if trial is None or trial.participant_id != participant:
            raise NotFound(f"trial {trial_id} is not one of this participant's trials")
        if trial.answered_at is not None:
            raise Conflict(f"trial {trial_id} was already answered")
        current = _current(session, participant)
        assert current is not None  # this trial itself is unanswered
        if current.id != trial.id:
            raise Conflict(
                f"trial {trial_id} is out of order: answer trial {current.id} (pair {current.position + 1}) first"
            )
        if trial.shown_at is None:
            raise Conflict(f"trial {trial_id} was never shown: fetch it first")
        now = utc_now()
        correct = side == trial.real_side
        response_ms = round((now - trial.shown_at).total_seconds() * 1000)
        done = cast(
            CursorResult,
            session.execute(
                update(Trial)
                .where(Trial.id == trial.id, Trial.answered_at.is_(None))
                .values(answered_at=now, answer=side, correct=correct, response_ms=response_ms)
            ),
        )
        if done.rowcount != 1:  # a simultaneous answer got there first
            raise Conflict(f"trial {trial_id} was already answered")
        session.commit()
        return {"correct": correct, "phase": trial.phase, "real_side": trial.real_side}
