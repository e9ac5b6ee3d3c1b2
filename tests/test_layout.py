"""House rules of the source tree that a reader relies on, checked so they stay true."""

import ast
import importlib
import re
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "polychrome"
LONGEST_FUNCTION = 60  # lines, decorators and docstring included: a function reads on one screen


def test_no_function_is_longer_than_a_screen():
    long = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - min([node.lineno, *(d.lineno for d in node.decorator_list)]) + 1
                if lines > LONGEST_FUNCTION:
                    long.append(f"{path.relative_to(SOURCE.parent)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these functions:\n" + "\n".join(long)


README = SOURCE.parents[1] / "README.md"


def readme_api_rows() -> dict[tuple[str, ...], set[str]]:
    """The README's "What works today" rows for Python modules: (modules) -> the names the row lists (each
    backticked span's leading identifier, ``create_model(name, ...)`` -> ``create_model``)."""
    table = (
        README.read_text().split("<!-- --8<-- [start:what-works] -->")[1].split("<!-- --8<-- [end:what-works] -->")[0]
    )
    rows = {}
    for line in table.splitlines():
        cells = line.split(" | ")
        if line.startswith("| `polychrome.") and len(cells) == 2:
            modules = tuple(re.findall(r"`(polychrome\.\w+)`", cells[0]))
            rows[modules] = {re.match(r"\w+", name).group() for name in re.findall(r"`([^`]+)`", cells[1])}
    return rows


def test_the_names_the_readme_lists_are_the_modules_public_names():
    """Every name the README's table gives for a module is in that module's ``__all__``; for polychrome.hints
    and polychrome.levin, whose every public name the row lists, ``__all__`` is exactly those."""
    rows = readme_api_rows()
    assert ("polychrome.hints", "polychrome.levin") in rows and ("polychrome.color",) in rows
    for modules, names in rows.items():
        public = set().union(*(public_of(module) for module in modules))
        for module in modules:
            missing = sorted(name for name in public_of(module) if not hasattr(importlib.import_module(module), name))
            assert not missing, f"{module}.__all__ names what it does not define: {missing}"
        assert names <= public, f"the README lists {sorted(names - public)} as {', '.join(modules)}, not in __all__"
    assert (
        public_of("polychrome.hints") | public_of("polychrome.levin") == rows[("polychrome.hints", "polychrome.levin")]
    )


def public_of(module: str) -> set[str]:
    return set(importlib.import_module(module).__all__)
