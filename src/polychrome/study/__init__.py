"""Studies: factors of a base training config varied one at a time, run, evaluated and written up.

``spec`` reads a study file and expands it into runs; ``execute`` trains and evaluates one run; ``examples``
draws its example strips; ``rows`` writes its rows and merges them into results.csv; ``runner`` runs or
submits every unfinished run; ``report`` writes the README from results.csv alone. Two stages: a study is a
screening (exploratory) unless its file pre-registers a confirmation (``preregistration``), whose seeds
``plan`` computes from a pilot's spread over seeds (``power``: how many seeds find a difference).
"""

from polychrome.study.report import write_report
from polychrome.study.runner import run_study
from polychrome.study.spec import expand, load_study

__all__ = ["expand", "load_study", "run_study", "write_report"]
