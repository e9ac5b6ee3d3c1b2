"""Zhang et al. (2016)'s "real or fake?" human study: a real photo and a colourisation of the same photo
side by side, "which one is real?", a few practice pairs with feedback, then test pairs without.

``store`` holds the tables and where they live, ``plan`` prepares a study and runs each participant
through it, ``statistics`` turns the answers into fool rates. No web code lives here: the web app
(``polychrome.serve.study_routes``) and the CLI both use this package.
"""

from polychrome.human_study.plan import SIDES, answer, create_study, next_trial, start_participant, study_of
from polychrome.human_study.statistics import CSV_COLUMNS, fool_rates, results_csv
from polychrome.human_study.store import (
    Conflict,
    NotFound,
    Participant,
    Store,
    Study,
    StudyError,
    StudyPhoto,
    Trial,
    default_db,
    get_study,
    open_store,
    store_exists,
    studies_home,
)

__all__ = [
    "CSV_COLUMNS",
    "SIDES",
    "Conflict",
    "NotFound",
    "Participant",
    "Store",
    "Study",
    "StudyError",
    "StudyPhoto",
    "Trial",
    "answer",
    "create_study",
    "default_db",
    "fool_rates",
    "get_study",
    "next_trial",
    "open_store",
    "results_csv",
    "start_participant",
    "store_exists",
    "studies_home",
    "study_of",
]
