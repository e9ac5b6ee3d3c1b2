"""What a human study found: each model's fool rate with a bootstrap interval, and every judgement as CSV.

A model's fool rate is the share of test pairs where its colourisation was picked as the real photo
(50% means people cannot tell them apart; Zhang et al. 2016, section 3.1).
"""

from __future__ import annotations

import contextlib
import csv
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from polychrome.human_study.store import Participant, Store, Study, Trial, find_study

CSV_COLUMNS = (
    "study",
    "participant",
    "participant_index",
    "position",
    "phase",
    "photo",
    "model",
    "real_side",
    "answer",
    "correct",
    "fooled",
    "shown_at",
    "answered_at",
    "response_ms",
)


def _judgements(session: Session, study: Study) -> list[Trial]:
    return list(
        session.scalars(
            select(Trial)
            .join(Participant)
            .where(Participant.study_id == study.id, Trial.answered_at.is_not(None))
            .order_by(Participant.index, Trial.position)
        )
    )


def fool_rates(store: Store, name: str, bootstrap: int = 2000, seed: int = 0) -> list[dict]:
    """Per model (in the study's order): the share of test judgements where its colourisation was taken
    for real, with a 95% percentile bootstrap interval.

    The bootstrap resamples participants, not judgements, because one person's answers are not
    independent of each other (some people are simply easier to fool). Each model draws from its own
    generator seeded by ``(seed, model index)``, so the intervals are reproducible.
    """
    with store.session() as session:
        study = find_study(session, name)
        tests = [t for t in _judgements(session, study) if t.phase == "test"]
    rates = []
    for m, model in enumerate(study.models):
        fooled: dict[str, int] = defaultdict(int)
        seen: dict[str, int] = defaultdict(int)
        for trial in tests:
            if trial.model == model:
                fooled[trial.participant_id] += not trial.correct
                seen[trial.participant_id] += 1
        row: dict[str, Any] = {
            "model": model,
            "participants": len(seen),
            "judgements": sum(seen.values()),
            "fooled": sum(fooled.values()),
            "fool_rate": None,
            "ci_low": None,
            "ci_high": None,
        }
        if seen:
            row["fool_rate"] = row["fooled"] / row["judgements"]
        if seen and bootstrap > 0:
            counts = np.array([(fooled[p], seen[p]) for p in seen], dtype=np.int64)
            picks = np.random.default_rng([seed, m]).integers(0, len(counts), size=(bootstrap, len(counts)))
            resampled = counts[picks].sum(axis=1)
            row["ci_low"], row["ci_high"] = (
                float(v) for v in np.percentile(resampled[:, 0] / resampled[:, 1], [2.5, 97.5])
            )
        rates.append(row)
    return rates


def results_csv(store: Store, name: str, path: str | Path | IO[str]) -> None:
    """Write every judgement (practice and test, one row each) to a CSV file or text stream."""
    with store.session() as session:
        study = find_study(session, name)
        rows = [
            (
                name,
                t.participant_id,
                t.participant.index,
                t.position,
                t.phase,
                t.photo.key,
                t.model,
                t.real_side,
                t.answer,
                int(bool(t.correct)),
                int(not t.correct),
                _iso(t.shown_at),
                _iso(t.answered_at),
                t.response_ms,
            )
            for t in _judgements(session, study)
        ]
    with open(path, "w", newline="") if isinstance(path, (str, Path)) else contextlib.nullcontext(path) as stream:
        writer = csv.writer(stream)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)


def _iso(time: datetime | None) -> str:
    return "" if time is None else time.isoformat()
