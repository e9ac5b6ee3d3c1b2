"""House rules of the source tree that a reader relies on, checked so they stay true."""

import ast
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
