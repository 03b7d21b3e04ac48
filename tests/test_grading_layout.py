"""The grader's modules import each other in one direction only (no cycles, no function-level
imports that hide one), and the lm-eval tasks never reach for the judge."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRADING = ROOT / "lema_plugin" / "grading"


def _grading_imports(path: Path) -> set[str]:
    """Sibling modules of lema_plugin.grading that `path` imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:  # from . import name
                found.update(alias.name if (GRADING / f"{alias.name}.py").exists() else "__init__" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lema_plugin.grading."):
            found.add(node.module.split(".")[2])
    return found


def test_grading_modules_import_without_cycles():
    graph = {path.stem: _grading_imports(path) - {path.stem} for path in GRADING.glob("*.py")}
    assert "extract" not in graph["normalize"] and "normalize" in graph["extract"]
    state: dict[str, str] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", f"import cycle: {' -> '.join(trail + (name,))}"
        state[name] = "open"
        for neighbour in sorted(graph.get(name, ())):
            visit(neighbour, trail + (name,))
        state[name] = "done"

    for name in sorted(graph):
        visit(name, ())


def test_latex_scanning_lives_in_one_module():
    for name in ("extract", "normalize", "compare"):
        assert "latex" in _grading_imports(GRADING / f"{name}.py"), name
    assert _grading_imports(GRADING / "latex.py") == set()


def test_lm_eval_tasks_never_call_a_judge():
    tree = ast.parse((ROOT / "lm_eval_tasks" / "lema" / "utils.py").read_text(encoding="utf-8"))
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    names = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    assert "lema_plugin.grading" in modules
    assert not any(".judge" in module or ".llm" in module for module in modules)
    assert not {"judge_graded", "LLMClient"} & names
