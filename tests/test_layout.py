"""The house: README's map names every module where it is, and no folder is a drawer.

The map ("How it is built") is an indented tree: a line `name/` opens a folder under the
folder of smaller indentation; every `*.py` on a line belongs to the folder it stands in.
A module added without a line in the map, or a map line for a module that is gone, fails.
"""

from __future__ import annotations

import re

from tests.support.brokers import ROOT

PACKAGES = (
    "monitor",
    "alerts",
    "dashboard",
    "hospital",
    "devices",
    "forecast",
    "commands",
    "benchmarks",
)
MAX_MODULES = 12  # "no folder is a drawer of more than about a dozen modules"


def map_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## How it is built", 1)[1]
    return section.split("```", 2)[1]


def mapped_modules() -> set[str]:
    stack: list[tuple[int, str]] = []  # (indent, folder path)
    found = set()
    for line in map_block().splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        first = line.split()[0]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        here = stack[-1][1] if stack else ""
        if first.endswith("/"):
            stack.append((indent, here + first))
            continue
        for name in re.findall(r"(?<![\w/.])([\w]+\.py)\b", line.split("  ")[0] + " " + first):
            found.add(here + name)
    return found


def real_modules() -> set[str]:
    out = set()
    for pkg in (*PACKAGES, "tests/support"):
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if path.name != "__init__.py" and "/static/" not in rel:
                out.add(rel)
    return out | {"main.py"}


def test_the_readme_map_names_every_module_where_it_is():
    mapped, real = mapped_modules(), real_modules()
    assert real - mapped == set(), "modules missing from README's map"
    assert mapped - real == set(), "README's map names modules that do not exist"


def test_no_folder_is_a_drawer():
    for pkg in PACKAGES:
        for folder in [ROOT / pkg, *(p for p in (ROOT / pkg).rglob("*") if p.is_dir())]:
            modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
            assert len(modules) <= MAX_MODULES, f"{folder.relative_to(ROOT)}: {len(modules)}"


def test_the_map_parser_sees_a_nested_module():
    # the parser itself: a module two folders deep is found under both folders' names
    assert "monitor/ingest/route.py" in mapped_modules()
    assert "forecast/training/train.py" in mapped_modules()
