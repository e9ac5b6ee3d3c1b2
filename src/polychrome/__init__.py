"""polychrome: learned image colourisation in CIE Lab (Zhang et al. 2016; Baldassarre et al. 2017)."""

__version__ = "0.1.0"


def load_colorizer(name: str, device: str = "cpu"):
    """A model ready to colourise images (see ``polychrome.colorize.load_colorizer``)."""
    from polychrome.colorize import load_colorizer as load

    return load(name, device)
