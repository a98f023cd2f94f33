"""Every lesson notebook, end to end (parametrized over the lessons that exist in solutions/).

- the master notebook runs top to bottom without an error and passes every check, hidden ones included;
- the released lesson, untouched, runs without mnist_cnn (or the autograder) importable and
  fails only with its NotImplementedError stubs, every check saying "not implemented yet";
- nbgrader gives the master notebook full marks and the untouched lesson zero, and its feedback
  does not show the hidden tests. (Whether each stays within its budget_s is measured by
  benchmarks/lessons.py, not asserted here: timings depend on the machine's load.)
"""
import re

import pytest

from coursekit import selfcheck
from lesson_harness import blocked_env, master, released

pytestmark = [pytest.mark.real_data, pytest.mark.slow]


def test_master_notebook_runs_and_passes_every_check(lesson_id, notebook_env):
    run = selfcheck.execute(master(lesson_id), env=notebook_env)
    assert not run.failure, run.failure
    assert not run.errors, f"the master notebook raised: {run.errors}"
    assert run.check_ids, "the master notebook has no checks"
    failures = {cid: selfcheck.verdict(run, cid) for cid in run.check_ids}
    assert not {k: v for k, v in failures.items() if v}, failures
    assert any(cid.endswith("_hidden") for cid in run.check_ids), "no hidden checks in the master notebook"
    bars = [i for i, c in enumerate(run.notebook.cells) if c.cell_type == "code" and "progress(" in c.source
            and not c.source.lstrip().startswith("def ") and c.get("outputs") and not _has_bar(c)]   # ran, no bar
    assert not bars, f"cells that call progress(...) but show no progress bar: {bars}"
    shown = [(i, m.group(0)) for i, text in _output_texts(run.notebook) for m in OBJECT_REPR.finditer(text)]
    assert not shown, f"cells show Python object reprs a student cannot use (cell, repr): {shown[:3]}"


# '<torch._C.Generator at 0x7f...>': what a cell shows when its last line returns an object by accident
OBJECT_REPR = re.compile(r"<[\w.]+(?: object)? at 0x[0-9a-f]+>")


def _has_bar(cell) -> bool:
    """A tqdm bar among the cell's outputs: a JupyterLab widget, or its text form."""
    for out in cell.get("outputs", []):
        data = out.get("data") or {}
        if "application/vnd.jupyter.widget-view+json" in data or "batch/s" in "".join(out.get("text") or ""):
            return True
    return False


def _output_texts(nb):
    """(cell index, text) of every text output of the executed notebook."""
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = out.get("text") or (out.get("data") or {}).get("text/plain") or ""
            yield i, "".join(text) if isinstance(text, list) else text


def test_released_lesson_runs_without_the_reference_and_fails_only_with_stubs(lesson_id, notebook_env, tmp_path):
    env, flag = blocked_env(tmp_path, notebook_env)
    run = selfcheck.execute(released(lesson_id), env=env)
    assert flag.read_text() == "active", "the import blocker did not run in the kernel"
    assert not run.failure, run.failure
    other = [e for e in run.errors if e["ename"] != "NotImplementedError"]
    assert not other, f"the untouched lesson raised something else than NotImplementedError: {other}"
    assert run.check_ids and not any(cid.endswith("_hidden") for cid in run.check_ids)
    for cid in run.check_ids:
        message = selfcheck.verdict(run, cid)
        assert message is not None and ("not implemented yet" in message or "NotImplementedError" in message), \
            f"{cid}: {message}"


def test_nbgrader_full_marks_for_master_zero_for_untouched(lesson_id, notebook_env, tmp_path, monkeypatch):
    from autograder.grade import autograde

    for key, value in notebook_env.items():
        monkeypatch.setenv(key, value)
    solved, untouched = autograde({("solution", lesson_id): master(lesson_id),
                                   ("untouched", lesson_id): released(lesson_id)},
                                  feedback_dir=tmp_path / "feedback")
    assert solved.max_score > 0
    assert solved.score == solved.max_score, solved.summary()
    assert untouched.score == 0 and untouched.max_score == solved.max_score, untouched.summary()
    for result in (solved, untouched):
        html = result.feedback.read_text()
        assert "HIDDEN TESTS" not in html and "_hidden" not in html, f"{result.feedback} shows hidden tests"
    # run as nbgrader runs it (checks judged in the notebook), a cell using an unfinished function says so
    assert "This cell uses your code checked by" in untouched.feedback.read_text()
    assert "This cell uses your code checked by" not in solved.feedback.read_text()
