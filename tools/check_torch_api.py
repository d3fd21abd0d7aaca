"""Does the torch in this environment have every torch attribute the course's student code uses?

    python tools/check_torch_api.py [ROOT] [--list]

Run it with the Python of another environment (an older torch, Colab's 2.11) to check the
notebooks and the students' package against that API. It reads, without importing anything of the
course, the code cells of ``ROOT/source/*/*.ipynb`` and the modules of ``ROOT/convae`` that the
students' wheel holds, collects every dotted name rooted at torch (through the aliases the code
imports: ``F``, ``nn``, ``Normal``...), resolves each in the running torch, and prints what is
missing. Exit status 1 when something is. Attribute existence only: keyword arguments and
behaviour are checked by running the notebooks.
"""

from __future__ import annotations

import ast
import importlib
import json
import sys
from pathlib import Path

STUDENT_MODULES = ("__init__", "data", "notebooks", "plotting", "pretrained", "summary", "training")
STUDENT_GRADING = ("checks", "probes", "proxy", "wire")


def code_of(root: Path) -> dict[str, str]:
    """name -> source of every student-facing piece of code."""
    code = {}
    for path in sorted(root.glob("source/*/*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for index, cell in enumerate(cells):
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
                code[f"{path.parent.name}/{path.stem}[{index}]"] = "\n".join(lines)
    for name in STUDENT_MODULES:
        code[f"convae/{name}.py"] = (root / "convae" / f"{name}.py").read_text(encoding="utf-8")
    for name in STUDENT_GRADING:
        code[f"convae/grading/{name}.py"] = (root / "convae" / "grading" / f"{name}.py").read_text(
            encoding="utf-8"
        )
    return code


def torch_aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted torch name, from the imports of a piece of code."""
    aliases = {"torch": "torch"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "torch":
                    aliases[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else "torch"
                    )
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "torch":
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def used_names(source: str, shared_aliases: dict[str, str]) -> set[str]:
    tree = ast.parse(source)
    aliases = {**shared_aliases, **torch_aliases(tree)}
    names = set(aliases.values())
    for node in ast.walk(tree):
        name = dotted(node) if isinstance(node, ast.Attribute) else None
        if name and name.split(".")[0] in aliases:
            head, _, rest = name.partition(".")
            names.add(f"{aliases[head]}.{rest}" if rest else aliases[head])
    return names


def resolves(name: str) -> bool:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False


def main(argv: list[str]) -> int:
    import torch

    arguments = [a for a in argv[1:] if not a.startswith("--")]
    root = Path(arguments[0] if arguments else Path(__file__).resolve().parents[1])
    code = code_of(root)
    # A notebook's imports cell defines aliases for the cells after it: share them per notebook.
    shared: dict[str, dict[str, str]] = {}
    for key, source in code.items():
        notebook = key.split("[")[0]
        shared.setdefault(notebook, {}).update(torch_aliases(ast.parse(source)))
    used: dict[str, set[str]] = {}
    for key, source in code.items():
        for name in used_names(source, shared[key.split("[")[0]]):
            used.setdefault(name, set()).add(key.split("[")[0])
    missing = {name: places for name, places in used.items() if not resolves(name)}
    versions = f"torch {torch.__version__}, Python {sys.version.split()[0]}"
    print(f"{versions}: {len(used)} torch names used in {len(code)} cells and modules")
    if "--list" in argv:
        print("\n".join(f"  {name}" for name in sorted(used)))
    for name, places in sorted(missing.items()):
        print(f"  missing: {name} (in {', '.join(sorted(places))})")
    print(f"{len(missing)} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
