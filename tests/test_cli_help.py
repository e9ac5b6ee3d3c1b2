"""Every command's --help prints (argparse %-formats help strings, so a bare "95%" breaks it)."""

import argparse

import pytest

from polychrome.cli import build_parser


def every_parser(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    yield words, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from every_parser(child, (*words, name))


PARSERS = list(every_parser(build_parser()))


def test_every_subcommand_is_reached():
    reached = {" ".join(words) for words, _ in PARSERS}
    assert {
        "",
        "serve",
        "human-study",
        "human-study create",
        "human-study results",
        "data stats",
        "study run",
    } <= reached


@pytest.mark.parametrize("words", [words for words, _ in PARSERS], ids=lambda words: " ".join(words) or "polychrome")
def test_help_prints(words, capsys):
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args([*words, "--help"])
    assert exit.value.code == 0
    assert "usage: polychrome" in capsys.readouterr().out


def test_serve_help_names_the_default_models_the_app_offers(capsys, monkeypatch):
    from polychrome.serve import app

    for defaults in (app.DEFAULT_MODELS, ["default", "gray", "guided"]):
        monkeypatch.setattr(app, "DEFAULT_MODELS", defaults)
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", "--help"])
        assert f"(repeat; default: {', '.join(defaults)})" in " ".join(capsys.readouterr().out.split())
