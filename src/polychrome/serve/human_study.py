"""Zhang et al. (2016)'s "real or fake?" human study: a real photo and a colourisation of the same photo
side by side, "which one is real?", a few practice pairs with feedback, then test pairs without; a
model's fool rate is the share of test pairs where its colourisation was picked as the real one (50%
means people cannot tell them apart).

Every colourisation is made when the study is created, so a participant never waits on a network. The
served images are PNG files with random names and the real photo is resized and re-encoded exactly like
the colourisations, so neither a URL nor a file format gives the answer away. Times are taken on the
server (naive UTC), so a response time cannot be faked by the page.

Storage is SQLAlchemy: a plain path is an SQLite file (WAL, so the page's reads never wait on writes),
any SQLAlchemy URL (``postgresql://...``) is used as is. No web code lives here: see ``study_routes``.
"""

from __future__ import annotations

import csv
import random
import re
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np
from PIL import Image
from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, create_engine, event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload, sessionmaker

from polychrome import load_colorizer
from polychrome.data import ImageReadError, load_rgb
from polychrome.data.images import image_extensions

SIDES = ("left", "right")
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a study name is used in URLs and as a folder name


class StudyError(ValueError):
    """A request the study cannot honour; the message says why, in words a participant or admin can act on."""


class NotFound(StudyError):
    """An unknown study, participant or trial (or a trial that is someone else's)."""


class Conflict(StudyError):
    """A well-formed request at the wrong moment: a trial answered twice, out of order, or never shown."""


def _now() -> datetime:
    """Server time as naive UTC: SQLite drops time zones, so every stored time is naive UTC alike."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {list[str]: JSON, dict[str, str]: JSON}


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    models: Mapped[list[str]]
    pairs: Mapped[int]
    practice: Mapped[int]
    exposure: Mapped[float]  # seconds the pair is shown; 0 keeps it on screen until the answer
    created: Mapped[datetime] = mapped_column(default=_now)
    photos: Mapped[list[StudyPhoto]] = relationship(order_by="StudyPhoto.id")


class StudyPhoto(Base):
    __tablename__ = "study_photos"
    __table_args__ = (UniqueConstraint("study_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    key: Mapped[str] = mapped_column(String(255))  # the source file's name
    real: Mapped[str] = mapped_column(String(64))  # file names inside the study's data folder
    colorized: Mapped[dict[str, str]]  # model -> file name


class Participant(Base):
    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("study_id", "index"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    index: Mapped[int]  # 0, 1, 2... in order of arrival: drives the model rotation
    created: Mapped[datetime] = mapped_column(default=_now)
    study: Mapped[Study] = relationship(lazy="joined")


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("participant_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    position: Mapped[int]
    phase: Mapped[str] = mapped_column(String(8))  # practice | test
    photo_id: Mapped[int] = mapped_column(ForeignKey("study_photos.id"))
    model: Mapped[str] = mapped_column(String(255))
    real_side: Mapped[str] = mapped_column(String(5))
    shown_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    answer: Mapped[str | None] = mapped_column(String(5))
    correct: Mapped[bool | None]  # picked the real photo; on a test trial, not correct means fooled
    response_ms: Mapped[int | None]  # answered_at - shown_at, both server times
    photo: Mapped[StudyPhoto] = relationship(lazy="joined")
    participant: Mapped[Participant] = relationship(lazy="joined")


@dataclass
class Store:
    """An open database: the engine and a session factory whose objects stay readable after commit."""

    engine: Engine
    session: sessionmaker[Session]


def open_store(url_or_path: str | Path) -> Store:
    """Open (creating the tables if needed) a study database: a plain path is an SQLite file."""
    text = str(url_or_path)
    sqlite_file = "://" not in text
    if sqlite_file:
        Path(text).expanduser().parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{Path(text).expanduser().resolve()}" if sqlite_file else text
    # The web app answers from a thread pool, so an SQLite connection may serve several threads in turn.
    engine = create_engine(url, connect_args={"check_same_thread": False} if url.startswith("sqlite") else {})
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    Base.metadata.create_all(engine)
    return Store(engine, sessionmaker(engine, expire_on_commit=False))


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _study(session: Session, name: str, *options: Any) -> Study:
    study = session.scalar(select(Study).where(Study.name == name).options(*options))
    if study is None:
        raise NotFound(f"there is no study named {name!r}")
    return study


def get_study(store: Store, name: str) -> Study:
    """The stored plan of a study (its photos included); NotFound if there is none by that name."""
    with store.session() as session:
        return _study(session, name, selectinload(Study.photos))


def create_study(store: Store, name: str, images_dir: str | Path, models: list[str], pairs: int = 40, practice: int = 10,
                 exposure: float = 1.0, data_dir: str | Path = "study-data", colorizer: Callable[[str], Any] = load_colorizer,
                 max_side: int = 512) -> Study:
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
        raise StudyError(f"need pairs >= 1, practice >= 0, exposure >= 0 and max_side >= 16, got {pairs}, {practice}, {exposure}, {max_side}")
    if not Path(images_dir).is_dir():
        raise StudyError(f"{images_dir} is not a folder of photos")
    extensions = set(image_extensions())
    sources = sorted(p for p in Path(images_dir).iterdir() if p.is_file() and p.suffix.lower() in extensions)
    if len(sources) < practice + pairs:
        raise StudyError(f"{images_dir} has {len(sources)} photos, but each participant sees {practice} practice + "
                         f"{pairs} test = {practice + pairs} different photos")
    with store.session() as session:
        if session.scalar(select(Study.id).where(Study.name == name)) is not None:
            raise StudyError(f"a study named {name!r} already exists; choose another name")

    folder = Path(data_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    photos = [StudyPhoto(key=source.name, real=_save(_shrunk(source, max_side), folder), colorized={}) for source in sources]
    for model in models:
        pipeline = colorizer(model)
        for photo in photos:
            real = np.array(Image.open(folder / photo.real).convert("RGB"))
            photo.colorized = photo.colorized | {model: _save(pipeline.colorize(real), folder)}

    study = Study(name=name, models=list(models), pairs=pairs, practice=practice, exposure=float(exposure), photos=photos)
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
        study = _study(session, name)
        for _ in range(10):  # two arrivals may claim the same index; the unique constraint sends one round again
            index = session.scalar(select(func.count()).select_from(Participant).where(Participant.study_id == study.id))
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
    return [Trial(participant_id=participant.id, position=i, phase="practice" if i < study.practice else "test",
                  photo_id=photo.id, model=study.models[(participant.index + i) % len(study.models)], real_side=rng.choice(SIDES))
            for i, photo in enumerate(photos)]


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
    return session.scalar(select(Trial).where(Trial.participant_id == participant, Trial.answered_at.is_(None))
                          .order_by(Trial.position).limit(1))


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
        session.execute(update(Trial).where(Trial.id == trial.id, Trial.shown_at.is_(None)).values(shown_at=_now()))
        session.commit()
        fake = trial.photo.colorized[trial.model]
        left, right = (trial.photo.real, fake) if trial.real_side == "left" else (fake, trial.photo.real)
        return {"trial": trial.id, "phase": trial.phase, "position": trial.position, "total": study.practice + study.pairs,
                "practice": study.practice, "pairs": study.pairs, "left": left, "right": right, "exposure": study.exposure}


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
        if current.id != trial.id:
            raise Conflict(f"trial {trial_id} is out of order: answer trial {current.id} (pair {current.position + 1}) first")
        if trial.shown_at is None:
            raise Conflict(f"trial {trial_id} was never shown: fetch it first")
        now = _now()
        correct = side == trial.real_side
        response_ms = round((now - trial.shown_at).total_seconds() * 1000)
        done = session.execute(update(Trial).where(Trial.id == trial.id, Trial.answered_at.is_(None))
                               .values(answered_at=now, answer=side, correct=correct, response_ms=response_ms))
        if done.rowcount != 1:  # a simultaneous answer got there first
            raise Conflict(f"trial {trial_id} was already answered")
        session.commit()
        return {"correct": correct, "phase": trial.phase, "real_side": trial.real_side}


def _judgements(session: Session, study: Study) -> list[Trial]:
    return list(session.scalars(select(Trial).join(Participant).where(Participant.study_id == study.id, Trial.answered_at.is_not(None))
                                .order_by(Participant.index, Trial.position)))


def fool_rates(store: Store, name: str, bootstrap: int = 2000, seed: int = 0) -> list[dict]:
    """Per model (in the study's order): the share of test judgements where its colourisation was taken
    for real, with a 95% percentile bootstrap interval.

    The bootstrap resamples participants, not judgements, because one person's answers are not
    independent of each other (some people are simply easier to fool). Each model draws from its own
    generator seeded by ``(seed, model index)``, so the intervals are reproducible.
    """
    with store.session() as session:
        study = _study(session, name)
        tests = [t for t in _judgements(session, study) if t.phase == "test"]
    rates = []
    for m, model in enumerate(study.models):
        fooled: dict[str, int] = defaultdict(int)
        seen: dict[str, int] = defaultdict(int)
        for trial in tests:
            if trial.model == model:
                fooled[trial.participant_id] += not trial.correct
                seen[trial.participant_id] += 1
        row = {"model": model, "participants": len(seen), "judgements": sum(seen.values()), "fooled": sum(fooled.values()),
               "fool_rate": None, "ci_low": None, "ci_high": None}
        if seen:
            row["fool_rate"] = row["fooled"] / row["judgements"]
        if seen and bootstrap > 0:
            counts = np.array([(fooled[p], seen[p]) for p in seen], dtype=np.int64)
            picks = np.random.default_rng([seed, m]).integers(0, len(counts), size=(bootstrap, len(counts)))
            resampled = counts[picks].sum(axis=1)
            row["ci_low"], row["ci_high"] = (float(v) for v in np.percentile(resampled[:, 0] / resampled[:, 1], [2.5, 97.5]))
        rates.append(row)
    return rates


CSV_COLUMNS = ("study", "participant", "participant_index", "position", "phase", "photo", "model", "real_side", "answer",
               "correct", "fooled", "shown_at", "answered_at", "response_ms")


def results_csv(store: Store, name: str, path: str | Path | IO[str]) -> None:
    """Write every judgement (practice and test, one row each) to a CSV file or text stream."""
    with store.session() as session:
        study = _study(session, name)
        rows = [(name, t.participant_id, t.participant.index, t.position, t.phase, t.photo.key, t.model, t.real_side, t.answer,
                 int(t.correct), int(not t.correct), t.shown_at.isoformat(), t.answered_at.isoformat(), t.response_ms)
                for t in _judgements(session, study)]
    stream = open(path, "w", newline="") if isinstance(path, (str, Path)) else path
    try:
        writer = csv.writer(stream)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
    finally:
        if stream is not path:
            stream.close()
