"""polychrome: learned image colourisation in CIE Lab (Zhang et al. 2016; Baldassarre et al. 2017)."""

__version__ = "0.1.0"
