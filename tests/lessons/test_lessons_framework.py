"""The lessons framework: course.yml against the notebooks, lessons/ up to date, test cells
that only call check(), no solution code shipped, coursekit independent of the reference,
and the check() core (collect mode, messages, stderr)."""
import ast
import io
import json
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import nbformat
import numpy as np
import pytest

from coursekit import checks
from coursekit.checks import HIDDEN_SUFFIX, REGISTRY, CheckFailed, check, load_public
from lesson_harness import REPO, blocked_env, master, released, shipped_sources
from coursekit import config

HIDDEN_RE = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS\n?", re.S)
SOLUTION_RE = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
LESSONS = config.load().lessons


def _graded(nb):
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            yield cell, meta


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.id for lesson in LESSONS])
def test_course_yml_points_agree_with_the_notebook(lesson):
    assert master(lesson.id).is_file(), f"course.yml lists {lesson.id}, but solutions/{lesson.id}/{lesson.id}.ipynb is missing"
    nb = nbformat.read(master(lesson.id), as_version=4)
    points = sum(float(meta.get("points", 0)) for _, meta in _graded(nb))
    assert points == lesson.points, f"course.yml gives {lesson.id} {lesson.points:g} points, its graded cells {points:g}"
    assert released(lesson.id).is_file(), f"lessons/{lesson.id}/ is missing: run `python -m autograder release`"


def test_every_notebook_is_a_lesson_in_course_yml():
    ids = {lesson.id for lesson in LESSONS}
    for folder in ("solutions", "lessons"):
        for path in (REPO / folder).glob("*/*.ipynb"):
            if ".ipynb_checkpoints" in path.parts:
                continue
            assert path.parent.name in ids, f"{path.relative_to(REPO)} is not listed in course.yml's lessons"
            assert path.stem == path.parent.name, f"{path.relative_to(REPO)}: name it {path.parent.name}.ipynb"


def test_lessons_are_up_to_date_with_solutions():
    from autograder import release

    problems = release.check()
    assert not problems, "\n".join(problems)


def test_test_cells_only_call_check_on_registered_checks(lesson_id):
    load_public()
    nb = nbformat.read(master(lesson_id), as_version=4)
    used = set()
    for cell, meta in _graded(nb):
        if cell.cell_type != "code":
            continue
        gid = meta["grade_id"]
        hidden = "".join(HIDDEN_RE.findall(cell.source + "\n"))
        visible = HIDDEN_RE.sub("", cell.source + "\n")
        for part, suffix in ((visible, ""), (hidden, HIDDEN_SUFFIX)):
            calls = [line for line in part.splitlines() if line.strip() and not line.strip().startswith("#")]
            for line in calls:
                tree = ast.parse(line.strip())
                call = tree.body[0].value if isinstance(tree.body[0], ast.Expr) else None
                assert isinstance(call, ast.Call) and getattr(call.func, "id", None) == "check", \
                    f"{lesson_id} cell {gid}: a test cell only calls check(...), found: {line}"
                cid = call.args[0].value
                assert cid == gid + suffix, f"{lesson_id} cell {gid}: calls check({cid!r}), expected {gid + suffix!r}"
                assert cid in REGISTRY, f"{cid} is not registered in coursekit.checks"
                used.add(cid)
        assert gid in used, f"{lesson_id} cell {gid} does not call check({gid!r})"
    module = {REGISTRY[cid].module for cid in used}
    orphans = {cid for cid, chk in REGISTRY.items() if chk.module in module} - used
    assert not orphans, f"registered checks no notebook cell runs: {sorted(orphans)}"


def _solution_lines(lesson_id):
    nb = nbformat.read(master(lesson_id), as_version=4)
    lines = set()
    for cell in nb.cells:
        for region in SOLUTION_RE.findall(cell.source):
            for line in region.splitlines():
                squashed = re.sub(r"\s+", "", line)
                if len(squashed) >= 12 and not squashed.startswith("#"):
                    lines.add(squashed)
    return lines


def test_no_solution_code_ships_with_a_lesson_or_in_coursekit(lesson_id):
    """Lesson k's solution lines appear in no released lesson j <= k, and nowhere in coursekit."""
    ids = [lesson.id for lesson in LESSONS]
    solution = _solution_lines(lesson_id)
    assert solution, f"{lesson_id}: no solution regions found"
    shipped = {}
    for other in ids[: ids.index(lesson_id) + 1]:
        if released(other).is_file():
            text = released(other).read_text()
            nb = nbformat.reads(text, as_version=4)
            assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
            shipped[f"lessons/{other}"] = "\n".join(c.source for c in nb.cells)
    for path in shipped_sources():
        shipped[str(path.relative_to(REPO))] = path.read_text()
    for where, text in shipped.items():
        squashed = re.sub(r"\s+", "", text)
        leaked = [line for line in solution if line in squashed]
        assert not leaked, f"{where} contains solution code of {lesson_id}: {leaked}"


def test_coursekit_never_imports_the_reference_or_the_autograder():
    for path in shipped_sources():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if n.split(".")[0] in ("mnist_cnn", "autograder")]
            assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_coursekit_imports_without_the_reference(tmp_path):
    env, flag = blocked_env(tmp_path)
    code = ("import coursekit.checks as c, coursekit.data, coursekit.plots, coursekit.selfcheck, coursekit.idx\n"
            "c.load_public()\n"
            "try:\n    import mnist_cnn\nexcept ImportError:\n    print('blocked')\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "blocked" and flag.exists()


# --- the check() core ----------------------------------------------------------------

def _normalize(images):
    return images.astype(np.float32) / 255


def test_check_prints_one_line_when_passing_and_nothing_to_stderr():
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        check("data_normalize", _normalize)
    assert out.getvalue().startswith("\u2714 data_normalize passed") and err.getvalue() == ""


def test_check_failure_is_an_assertion_error_with_a_clean_message():
    err = io.StringIO()
    with redirect_stderr(err), pytest.raises(AssertionError) as info:
        check("data_normalize", lambda images: images / 256)
    assert isinstance(info.value, CheckFailed)
    assert str(info.value).startswith("data_normalize: ") and "256" in str(info.value)
    shown = info.value._render_traceback_()          # what Jupyter shows instead of a traceback
    assert "CheckFailed" in shown[0] and "256" in "\n".join(shown) and "Traceback" not in "\n".join(shown)
    assert err.getvalue() == ""
    # Run All stops at a failing check: the message says what did not run, and how to go on.
    assert shown[-1] == checks.HOW_TO_GO_ON and "have not run" in shown[-1] and "All Below" in shown[-1]
    assert checks.HOW_TO_GO_ON not in checks.judge_data("data_normalize", checks.collect("data_normalize",
                                                                                      lambda images: images / 256))


def test_check_of_a_stub_raises_not_implemented_error():
    def normalize(images):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError) as info:
        check("data_normalize", normalize)
    assert "not implemented yet" in str(info.value) and "normalize" in str(info.value)
    assert str(info.value).endswith(checks.HOW_TO_GO_ON)


def test_student_exceptions_and_warnings_never_reach_stderr():
    import warnings

    def noisy(images):
        warnings.warn("a warning from the student's code")
        print("to stderr", file=sys.stderr)
        raise ValueError("boom")

    err = io.StringIO()
    with redirect_stderr(err), pytest.raises(CheckFailed) as info:
        check("data_normalize", noisy)
    assert err.getvalue() == ""
    assert "ValueError: boom" in str(info.value) and "in noisy, line" in str(info.value)


def test_collect_mode_saves_plain_npz_and_judges_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(checks.COLLECT_DIR_ENV, str(tmp_path))
    check("data_normalize", lambda images: images / 256)          # wrong, but collect mode does not judge
    path = tmp_path / "data_normalize.npz"
    with np.load(path, allow_pickle=False) as z:                  # no pickles needed
        assert str(z["__check__"]) == "data_normalize" and str(z["__status__"]) == "ok"
    data = checks.from_npz(path)
    assert "256" in checks.judge_data("data_normalize", data)


def test_a_grader_can_choose_the_inputs_by_seed(monkeypatch):
    monkeypatch.setenv(checks.SEED_ENV, "1234")
    data = checks.collect("data_normalize", _normalize)
    assert data["__seed__"] == 1234
    assert checks.judge_data("data_normalize", data) is None
    bad = checks.collect("data_normalize", lambda images: images.astype(np.float32) / 256)
    assert bad["__seed__"] == 1234 and checks.judge_data("data_normalize", bad)


def test_hidden_check_without_the_autograder_says_so(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_autograder(name, *args, **kwargs):
        if name.startswith("autograder"):
            raise ModuleNotFoundError("No module named 'autograder'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(checks.registry, "_loaded_hidden", {})
    monkeypatch.setattr(builtins, "__import__", no_autograder)
    monkeypatch.setattr(checks.registry.importlib, "import_module", lambda name: no_autograder(name))
    data = checks.collect("data_normalize_hidden", _normalize)
    with pytest.raises(CheckFailed, match="hidden check"):
        checks.judge_data("data_normalize_hidden", data)


def test_collected_data_must_be_plain():
    with pytest.raises(TypeError):
        checks.to_npz_bytes({"x": object()})


# --- authoring and release of other cell kinds ---------------------------------------

def test_authoring_and_release_of_every_cell_kind(tmp_path):
    from autograder import authoring
    from autograder.authoring import nbgrader_meta as meta
    from autograder.release import generate

    write_source(tmp_path / "src", "99_demo", [
        ("markdown", "# Demo", {}),
        ("code", "X = 1", meta("demo_given", locked=True)),
        ("code", "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION", meta("demo_answer", solution=True)),
        ("code", 'check("demo_check", f)\n### BEGIN HIDDEN TESTS\ncheck("demo_check_hidden", f)\n### END HIDDEN TESTS',
         meta("demo_check", grade=True, locked=True, points=2)),
        ("markdown", "The model answer, for the grader's eyes only.", meta("demo_essay", grade=True, solution=True, points=3)),
    ])
    authoring.write(authoring.build("99_demo", tmp_path / "src"), tmp_path / "source" / "99_demo" / "99_demo.ipynb")
    out = generate("99_demo", tmp_path / "source", tmp_path / "release")
    nb = nbformat.read(out / "99_demo.ipynb", as_version=4)
    text = json.dumps(nb)
    assert "return x + 1" not in text and "model answer" not in text and "_hidden" not in text
    sources = {c.id: c.source for c in nb.cells}
    assert "raise NotImplementedError()" in sources["demo_answer"]
    assert sources["demo_essay"] == "YOUR ANSWER HERE"
    assert sources["demo_check"] == 'check("demo_check", f)'
    assert nb.cells[1].metadata["nbgrader"]["locked"] and nb.cells[3].metadata["nbgrader"]["points"] == 2


def write_source(root: Path, lesson_id: str, cells) -> Path:
    """Write ``<root>/<id>/<id>.py`` (percent format) from (cell_type, source, metadata) triples."""
    from autograder.authoring import source_path, source_text

    path = source_path(lesson_id, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source_text(cells))
    return path


@pytest.mark.parametrize("cells, fragment", [
    ([("code", "def f():\n    return 1", {"nbgrader": {"grade": False, "grade_id": "x_answer", "locked": False,
                                                        "schema_version": 3, "solution": True}})],
     "needs a ### BEGIN SOLUTION / ### END SOLUTION region"),
    ([("code", "X = 1", {"nbgrader": {"grade": False, "grade_id": "Bad-Id", "locked": True, "schema_version": 3,
                                       "solution": False}})], "use lower-case letters"),
    ([("code", "X = 1", {"nbgrader": {"grade": False, "grade_id": "twice", "locked": True, "schema_version": 3,
                                       "solution": False}})] * 2, "used twice"),
    ([("code", 'check("x")', {"nbgrader": {"grade": True, "grade_id": "x", "locked": True, "schema_version": 3,
                                            "solution": False}})], "needs \"points\""),
    ([("code", "# Given", {"nbgrader": {"grade": False, "grade_id": "g", "locked": True, "schema_version": 3,
                                         "solution": False}, "given_from": ["01_data:no_such_cell"]})],
     "has no code cell with that grade_id"),
    ([("code", "X = 1", {"nbgrader": {"grade": False, "grade_id": "g", "locked": True, "schema_version": 3,
                                       "solution": False}, "given_from": ["01_data:data_normalize_answer"]})],
     "remove its own code ('X = 1')"),
    ([("code", "# Given", {"nbgrader": {"grade": False, "grade_id": "g", "locked": True, "schema_version": 3,
                                         "solution": False}, "given_from": ["01_data:data_normalize"]})],
     "is a test cell"),
    ([("code", "# Given", {"given_from": ["98_loop:a"], "nbgrader": {"grade": False, "grade_id": "a", "locked": True,
                                                                      "schema_version": 3, "solution": False}})],
     "given_from loops"),
])
def test_a_broken_source_is_refused_with_the_cell_and_the_reason(tmp_path, cells, fragment):
    import shutil

    from autograder import authoring

    shutil.copytree(authoring.SOURCE_ROOT / "01_data", tmp_path / "01_data")
    write_source(tmp_path, "98_loop", cells)
    with pytest.raises(authoring.AuthoringError, match=re.escape(fragment)):
        authoring.build("98_loop", tmp_path)


def test_given_code_comes_from_the_earlier_masters_solution():
    """Lesson 5's given Net is lesson 3's fc_net_answer without the region markers: one source, no copy."""
    from autograder import authoring

    given = {c.id: c for c in authoring.build("05_evaluation").cells}
    master3 = {c.id: c for c in authoring.build("03_fc").cells}
    net = master3["fc_net_answer"].source
    assert "### BEGIN SOLUTION" in net
    assert given["eval_given_net"].source == "\n".join(ln for ln in net.splitlines() if "### " not in ln)
    assert given["eval_given_net"].metadata["given_from"] == ["03_fc:fc_net_answer"]
    for gid in ("train_given_pipeline", "train_given_net"):
        assert gid in {c.id for c in authoring.build("04_training").cells}


def test_a_bare_stub_is_not_implemented_but_torchs_own_notimplementederror_is_an_error():
    from coursekit.checks import collect, judge_data

    def stub(images):
        raise NotImplementedError()

    def torch_dtype_error(images):
        raise NotImplementedError("\"addmm_impl_cpu_\" not implemented for 'Long'")

    assert collect("data_normalize", stub)["__status__"] == "not_implemented"
    assert judge_data("data_normalize", collect("data_normalize", stub)).startswith("not implemented yet")
    found = collect("data_normalize", torch_dtype_error)
    assert found["__status__"] == "error"
    message = judge_data("data_normalize", found)
    assert "not implemented for 'Long'" in message and not message.startswith("not implemented yet")


# --- numbers of someone else's run in a lesson's text ----------------------------------------

def test_a_number_of_someone_elses_run_is_caught():
    """Sentences lesson 6 had (2026-11): each quoted the author's run, not the student's."""
    from lesson_harness import unchecked_numbers

    old = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text) for text in [
        "It takes a few seconds and reaches about **96%** on the test set.",
        "the worst digits, 9 and 8 (about 92 and 93% right), are misread about one time in 13",
        "A **thicker** pen costs about 7 points; a **rotation** of 30°, either way, (72 to 75%).",
        "### Exercise (a): `shift` (3 points)",                        # points of an exercise: fine
    ]])
    found = unchecked_numbers(old, {})
    for number in ("a few seconds", "96%", "92 and 93%", "one time in 13", "7 points", "72 to 75%"):
        assert any(f.startswith(f"'{number}:") for f in found), (number, found)
    assert not any("3 points" in f for f in found)
    assert unchecked_numbers(old, {"96%": lambda: False, "a few seconds": "x", "92 and 93%": "x",
                                   "one time in 13": "x", "7 points": "x", "72 to 75%": "x"}) == [
        "'96%: It takes a few seconds and reaches about **96%** on the test set': the claim does not hold on the reference"]


# --- parts of an exercise: every failing part at once, partial credit -------------------------

@pytest.fixture()
def parted_check():
    """A throwaway check with a whole-exercise gate, two parts (one with a hidden judge of its own)
    and a whole-exercise hidden judge; the student gives two functions, one per part."""
    from coursekit.checks import attempt, fail, hidden_judge, judge, part_ran, register
    from coursekit.checks import registry

    def collect(inputs, first, second):
        data = {"kind_ok": callable(first)}
        with attempt("first", data):
            data["a"] = float(first(2.0))
        with attempt("second", data):
            data["b"] = float(second(2.0))
        return data

    for cid in ("zz_parts", "zz_parts_hidden"):
        register(cid, inputs=lambda seed: {"x": 2.0})(collect)

    @judge("zz_parts", "zz_parts_hidden")
    def gate(inputs, found):
        if not found["kind_ok"]:
            fail("first is not a function")

    @judge("zz_parts", "zz_parts_hidden", part="first")
    def judge_first(inputs, found):
        part_ran(found, "first")
        if found["a"] != 4.0:
            fail(f"first(2) gave {found['a']:g}, not 4")

    @judge("zz_parts", "zz_parts_hidden", part="second")
    def judge_second(inputs, found):
        part_ran(found, "second")
        if found["b"] != 8.0:
            fail(f"second(2) gave {found['b']:g}, not 8")

    whole_calls = []

    @hidden_judge("zz_parts_hidden")
    def whole(inputs, found):
        whole_calls.append(1)

    module = REGISTRY["zz_parts_hidden"].module
    registry._loaded_hidden[module] = True          # no entry point attaches these: they are attached here
    yield whole_calls
    for cid in ("zz_parts", "zz_parts_hidden"):
        REGISTRY.pop(cid)
    registry._loaded_hidden.pop(module, None)


def test_every_failing_part_is_named_at_once_and_earns_its_share(parted_check):
    from coursekit.checks import collect, verdict

    def square(x): return x * x
    def cube(x): return x ** 3
    def stub(x): raise NotImplementedError()
    def broken(x): return {}["oops"]

    said = verdict("zz_parts", collect("zz_parts", square, cube))
    assert said.message is None and said.fraction == 1 and said.parts == ["first", "second"]

    said = verdict("zz_parts", collect("zz_parts", square, square))
    assert said.fraction == 0.5 and said.failed == ["second"]
    assert said.message == "second(2) gave 4, not 8\n(first is right: only the above needs fixing.)"

    said = verdict("zz_parts", collect("zz_parts", cube, square))
    assert said.fraction == 0
    assert said.message.splitlines() == ["2 parts of this exercise need fixing (first and second):",
                                         "1. first: first(2) gave 8, not 4", "2. second: second(2) gave 4, not 8"]

    said = verdict("zz_parts", collect("zz_parts", square, broken))     # a part's code raising costs that part
    assert said.fraction == 0.5 and "KeyError: 'oops'" in said.message and "in broken" in said.message

    found = collect("zz_parts", stub, stub)        # nothing started: the whole exercise is not implemented
    assert found["__status__"] == "not_implemented"
    assert verdict("zz_parts", found).fraction == 0
    assert verdict("zz_parts", collect("zz_parts", stub, cube)).message.startswith("not implemented yet")

    said = verdict("zz_parts", collect("zz_parts", 3, cube))              # the gate fails: nothing else runs
    assert said.fraction == 0 and said.message == "first is not a function" and said.failed == [""]


def test_a_whole_exercise_judge_after_a_failed_part_is_skipped(parted_check):
    from coursekit.checks import collect, verdict

    whole_calls = parted_check
    assert verdict("zz_parts_hidden", collect("zz_parts_hidden", lambda x: x * x, lambda x: 0.0)).fraction == 0.5
    assert whole_calls == []
    assert verdict("zz_parts_hidden", collect("zz_parts_hidden", lambda x: x * x, lambda x: x ** 3)).fraction == 1
    assert whole_calls == [1]
