"""The documentation site builds strictly: every link, anchor, image, README snippet and API reference resolves."""

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def page_text(path: Path) -> str:
    """A built page's visible text (tags dropped: highlighted code is split into spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason='the docs extra is not installed: .venv/bin/pip install -e ".[docs]"',
)
def test_the_docs_build_strictly(tmp_path):
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, build.stdout + build.stderr
    home = page_text(site / "index.html")
    assert "--8<--" not in home, "a README snippet marker was left in the home page"
    assert ".venv/bin/python -m pytest" in home, "the home page lacks the README's set-up commands"
    assert "rgb_to_lab(" in page_text(site / "reference" / "color" / "index.html"), (
        "the API reference lacks a signature"
    )
