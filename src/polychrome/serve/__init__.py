"""The web app: colourise photos in a browser (``polychrome serve``); see ``polychrome.serve.app``."""

from polychrome.serve.app import create_app, serve

__all__ = ["create_app", "serve"]
