"""Where the human study lives: its tables (SQLAlchemy), the errors a request can meet, and the default
place on disk.

Storage is SQLAlchemy: a plain path is an SQLite file (WAL, so the page's reads never wait on writes),
any SQLAlchemy URL (``postgresql://...``) is used as is. Times are naive UTC, taken on the server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload, sessionmaker


class StudyError(ValueError):
    """A request the study cannot honour; the message says why, in words a participant or admin can act on."""


class NotFound(StudyError):
    """An unknown study, participant or trial (or a trial that is someone else's)."""


class Conflict(StudyError):
    """A well-formed request at the wrong moment: a trial answered twice, out of order, or never shown."""


def utc_now() -> datetime:
    """Server time as naive UTC: SQLite drops time zones, so every stored time is naive UTC alike."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {list[str]: JSON, dict[str, str]: JSON}


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    models: Mapped[list[str]]
    pairs: Mapped[int]
    practice: Mapped[int]
    exposure: Mapped[float]  # seconds the pair is shown; 0 keeps it on screen until the answer
    created: Mapped[datetime] = mapped_column(default=utc_now)
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
    created: Mapped[datetime] = mapped_column(default=utc_now)
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


def studies_home() -> Path:
    """The default folder of the study database and the studies' images: ``$POLYCHROME_STUDIES``, else
    ``$XDG_DATA_HOME/polychrome/studies`` (``~/.local/share/polychrome/studies``). A user data folder,
    not the working directory, so ``polychrome serve`` started anywhere finds the same studies and
    leaves no folder behind. Read on every call, never at import time."""
    if os.environ.get("POLYCHROME_STUDIES"):
        return Path(os.environ["POLYCHROME_STUDIES"]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    return Path(data_home).expanduser() / "polychrome" / "studies"


def default_db() -> Path:
    """The default study database: ``studies.sqlite`` in ``studies_home()``."""
    return studies_home() / "studies.sqlite"


def store_exists(url_or_path: str | Path) -> bool:
    """Whether ``open_store`` would find a database rather than create one (a server URL is taken to exist)."""
    text = str(url_or_path)
    return "://" in text or Path(text).expanduser().is_file()


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


def find_study(session: Session, name: str, *options: Any) -> Study:
    """Study ``name`` in an open session; NotFound if there is none by that name."""
    study = session.scalar(select(Study).where(Study.name == name).options(*options))
    if study is None:
        raise NotFound(f"there is no study named {name!r}")
    return study


def get_study(store: Store, name: str) -> Study:
    """The stored plan of a study (its photos included); NotFound if there is none by that name."""
    with store.session() as session:
        return find_study(session, name, selectinload(Study.photos))
