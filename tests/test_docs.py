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


def test_every_number_the_study_findings_quote_is_in_a_report():
    """The findings (docs/studies.md, the README's summary) are written by hand from the regenerated reports;
    a number given to two decimals or more that no report holds is a stale copy. A sentence that cites a
    `git show` revision quotes the rows as they were then, so it is not held to today's reports."""
    number = re.compile(r"(?<![\d.])\d+\.\d{2,}(?!\d)")
    reports = " ".join(path.read_text() for path in sorted((ROOT / "docs" / "study").glob("*/README.md")))
    held = set(number.findall(reports))
    studies = (ROOT / "docs" / "studies.md").read_text()
    readme = (ROOT / "README.md").read_text()
    findings = (
        studies[studies.index("## What the studies found") :]
        + "\n\n"
        + readme[readme.index("In short (") :].split("\n\n")[0]
    )
    quoted = {
        n for sentence in re.split(r"\.\s+", findings) if "git show" not in sentence for n in number.findall(sentence)
    }
    assert len(quoted) > 100, "the findings section was not found"
    assert quoted <= held, f"not in any report: {sorted(quoted - held)}"
