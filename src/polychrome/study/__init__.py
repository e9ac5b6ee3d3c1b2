"""Studies: factors of a base training config varied one at a time, run, evaluated and written up."""

from polychrome.study.report import write_report
from polychrome.study.runner import expand, load_study, run_study

__all__ = ["expand", "load_study", "run_study", "write_report"]
