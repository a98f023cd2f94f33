"""The README's layout table matches the tree, one folder per lesson, and the reference
package (mnist_cnn) does not import the autograder."""
import ast
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _table_paths() -> dict:
    """{path: description} of the README's "What is in the repository" table."""
    text = (REPO / "README.md").read_text()
    section = text.split("## What is in the repository", 1)[1].split("\n## ", 1)[0]
    return {m[1]: m[2] for m in re.finditer(r"^\| `([^`]+)` \| (.+) \|$", section, re.M)}


def test_the_readme_table_names_every_top_level_folder_and_nothing_that_is_not_there():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    if not tracked:                                # not a git checkout (an sdist): list the folder
        tracked = [str(p.relative_to(REPO)) for p in REPO.iterdir()]
    folders = {p.split("/")[0] + "/" for p in tracked if "/" in p and not p.startswith(".")}
    table = _table_paths()
    assert folders - set(table) == set(), f"README's layout table lacks {sorted(folders - set(table))}"
    for path, what in table.items():
        assert (REPO / path).exists() or "not committed" in what, f"README's table names {path}, which is not there"


def _imports(package: str) -> set:
    out = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out.update((a.name.split(".")[0], path.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.add((node.module.split(".")[0], path.name))
    return out


def test_layers_import_only_downwards():
    """(coursekit and the lessons' public checks: tests/lessons/test_lessons_framework.py.)"""
    assert not {(m, f) for m, f in _imports("mnist_cnn") if m == "autograder"}


def test_one_folder_per_lesson_holds_what_an_author_edits():
    """The notebook source, the public checks, the hidden judges and the tests, named by the lesson id."""
    from coursekit import config

    for lesson in config.load().lessons:
        folder = REPO / "lessons_src" / lesson.id
        names = {p.name for p in folder.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
        checks = f"{lesson.id}_checks" + ("" if (folder / f"{lesson.id}_checks").is_dir() else ".py")  # a module or a package
        assert names == {f"{lesson.id}.py", checks, f"{lesson.id}_judges.py", f"test_{lesson.id}.py"}, names
    assert not list((REPO / "coursekit" / "checks").glob("lesson*.py"))
    assert not list((REPO / "autograder" / "hidden").glob("lesson*.py"))
