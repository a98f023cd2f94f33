"""autograder.sandbox: each isolation claim is proved from both sides.

Every test that says "the sandbox cannot X" first shows that the host CAN (the secret file is
readable, the port accepts connections, ...), then runs a tiny program inside the sandbox and
checks that there it cannot. The bwrap tests are skipped, with the reason, where bwrap does not
work; the fallback is tested everywhere.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.sandbox import Limits, plan_sandbox, runtime_paths, sandbox_command

_why: list[str] = []
BWRAP = sandbox.bwrap_available(why=_why)
needs_bwrap = pytest.mark.skipif(not BWRAP, reason=f"bwrap unavailable: {'; '.join(_why)}")
REPO = Path(__file__).resolve().parents[2]
SMALL = Limits(cpu_seconds=60, memory_bytes=2 << 30, max_processes=64)


def run_inside(code: str, workdir: Path, *, limits: Limits = SMALL, use_bwrap: bool | None = True,
               readonly=(), env=None, timeout=60, python=None):
    """Run python code in the sandbox; return (returncode, stdout, stderr)."""
    workdir.mkdir(parents=True, exist_ok=True)
    python = python or sys.executable
    cmd = sandbox_command([python, "-c", textwrap.dedent(code)], workdir=workdir,
                          readonly_paths=[*runtime_paths(), *readonly], env=env or {},
                          limits=limits, use_bwrap=use_bwrap, python=python)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          start_new_session=True)
    return proc.returncode, proc.stdout, proc.stderr


def result(out: str) -> dict:
    """The last stdout line, as JSON."""
    return json.loads(out.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------- bwrap
def test_bwrap_probe_is_cached_and_can_be_forced_off(monkeypatch):
    assert sandbox.bwrap_available() == BWRAP
    monkeypatch.setenv("AUTOGRADER_BWRAP", "0")
    why: list[str] = []
    assert sandbox.bwrap_available(why=why) is False
    assert "AUTOGRADER_BWRAP" in why[0]


@needs_bwrap
def test_cannot_read_secrets_outside(tmp_path):
    secret = tmp_path / "hidden_tests" / "answers.txt"
    secret.parent.mkdir()
    secret.write_text("the answer is 42")
    assert secret.read_text() == "the answer is 42"            # the host can
    lesson = REPO / "lessons_src" / "01_data"     # the lesson's folder: only its public checks are shipped
    host_only = [str(secret), str(REPO / "pyproject.toml"), str(REPO / "README.md"),
                 str(lesson / "01_data.py"), str(lesson / "01_data_judges.py"), str(lesson / "test_01_data.py"),
                 "/etc/shadow", "/root/.bash_history", "/etc/hostname"]
    assert (REPO / "pyproject.toml").is_file()
    code = f"""
        import json, os
        out = {{}}
        for p in {host_only!r}:
            try:
                open(p).read(); out[p] = "READ"
            except OSError as e:
                out[p] = type(e).__name__
        out["repo_listing"] = sorted(os.listdir({str(REPO)!r}))
        out["solutions"] = os.path.exists({str(REPO / "solutions")!r})
        out["lesson_listing"] = sorted(os.listdir({str(lesson)!r}))
        out["tmp_listing"] = os.listdir("/tmp")
        print(json.dumps(out))
    """
    from autograder import runner

    rc, out, err = run_inside(code, tmp_path / "scratch", readonly=runner._course_files())   # what grading mounts
    assert rc == 0, err
    seen = result(out)
    for p in host_only:
        assert seen[p] != "READ", f"{p} readable inside the sandbox"
    # Of the repository only the runtime packages (and course.yml) are there, read-only.
    assert set(seen["repo_listing"]) <= {"coursekit", "mnist_cnn", "course.yml", "lessons_src", ".venv"}
    assert seen["solutions"] is False
    from coursekit.checks import public_check_sources

    assert seen["lesson_listing"] == [p.name for p in public_check_sources(REPO / "lessons_src") if p.parent == lesson]
    assert seen["lesson_listing"] == ["01_data_checks"]            # the package of the lesson's public checks
    assert seen["tmp_listing"] == [] or all(not n.startswith("pytest") for n in seen["tmp_listing"])


@needs_bwrap
def test_cannot_write_outside_scratch(tmp_path):
    gradebook = tmp_path / "gradebook.db"
    gradebook.write_text("grades v1")
    coursekit_dir = Path(runtime_paths(packages=("coursekit",))[-1])
    before = sorted(os.listdir(coursekit_dir))
    targets = [str(gradebook), str(coursekit_dir / "pwned.py"), sys.prefix + "/pwned.txt", "/usr/pwned"]
    code = f"""
        import json
        out = {{}}
        for p in {targets!r}:
            try:
                with open(p, "w") as f: f.write("pwned")
                out[p] = "WROTE"
            except OSError as e:
                out[p] = type(e).__name__
        open("in_scratch.txt", "w").write("mine")
        print(json.dumps(out))
    """
    rc, out, err = run_inside(code, tmp_path / "scratch")
    assert rc == 0, err
    assert all(v != "WROTE" for v in result(out).values()), out
    assert gradebook.read_text() == "grades v1"
    assert sorted(os.listdir(coursekit_dir)) == before
    assert not Path(sys.prefix, "pwned.txt").exists()
    assert (tmp_path / "scratch" / "in_scratch.txt").read_text() == "mine"   # scratch is writable


@needs_bwrap
def test_no_network(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    probe = socket.create_connection(("127.0.0.1", port), timeout=5)    # the host can connect
    probe.close()
    code = f"""
        import json, socket
        out = {{}}
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=5); out["tcp"] = "CONNECTED"
        except OSError as e:
            out["tcp"] = type(e).__name__
        try:
            socket.getaddrinfo("pypi.org", 443); out["dns"] = "RESOLVED"
        except OSError as e:
            out["dns"] = type(e).__name__
        out["interfaces"] = [n for _, n in socket.if_nameindex()]
        print(json.dumps(out))
    """
    try:
        rc, out, err = run_inside(code, tmp_path / "scratch")
    finally:
        server.close()
    assert rc == 0, err
    seen = result(out)
    assert seen["tcp"] == "ConnectionRefusedError"
    assert seen["dns"] != "RESOLVED"
    assert seen["interfaces"] == ["lo"]


@needs_bwrap
def test_unprivileged_own_pid_namespace_clean_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "s3cr3t")
    code = """
        import json, os, resource
        print(json.dumps({"uid": os.getuid(), "euid": os.geteuid(), "pids": [p for p in os.listdir("/proc") if p.isdigit()],
                          "env": sorted(os.environ), "cwd": os.getcwd(), "home": os.environ["HOME"],
                          "caps": [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0],
                          "nnp": [l.split()[1] for l in open("/proc/self/status") if l.startswith("NoNewPrivs")][0]}))
    """
    rc, out, err = run_inside(code, tmp_path / "scratch", env={"ONLY_THIS": "1"})
    assert rc == 0, err
    seen = result(out)
    assert "GRADER_SECRET_TOKEN" not in seen["env"] and "ONLY_THIS" in seen["env"]
    assert seen["cwd"] == seen["home"] == sandbox.SANDBOX_HOME
    assert int(seen["caps"], 16) == 0 and seen["nnp"] == "1"
    assert str(os.getpid()) not in seen["pids"] and len(seen["pids"]) <= 4
    if os.geteuid() == 0:
        assert seen["uid"] != 0 and seen["euid"] != 0


FORK_STORM = """
    import json, os, time
    n, blocked = 0, False
    try:
        for i in range(1000):
            pid = os.fork()
            if pid == 0:
                time.sleep(2)
                os._exit(0)
            n += 1
    except BlockingIOError:
        blocked = True
    for _ in range(n):
        os.wait()
    print(json.dumps({"forked": n, "blocked": blocked}))
"""


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="an unprivileged host's process limit counts its own processes too")
def test_fork_storm_is_bounded(tmp_path):
    rc, out, err = run_inside(FORK_STORM, tmp_path / "scratch", limits=Limits(max_processes=40))
    assert rc == 0, err
    seen = result(out)
    assert seen["blocked"] and seen["forked"] < 40


@needs_bwrap
def test_memory_limit_allows_torch_but_not_8_gb(tmp_path):
    code = """
        import json, torch
        from mnist_cnn.model import Net
        net = Net()
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        for _ in range(5):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(torch.rand(256, 1, 28, 28)), torch.randint(0, 10, (256,)))
            loss.backward(); opt.step()
        try:
            b = bytearray(8 << 30); big = "ALLOCATED"
        except MemoryError:
            big = "MemoryError"
        print(json.dumps({"loss": float(loss), "big": big, "threads": torch.get_num_threads()}))
    """
    rc, out, err = run_inside(code, tmp_path / "scratch", limits=Limits(memory_bytes=2 << 30),
                              env={"OMP_NUM_THREADS": "1"})
    assert rc == 0, err
    seen = result(out)
    assert seen["big"] == "MemoryError" and seen["loss"] > 0 and seen["threads"] == 1


@needs_bwrap
def test_runtime_under_tmp_is_visible_despite_private_tmp(tmp_path):
    # pytest's tmp_path is under /tmp, like a venv in /tmp: it must show through the tmpfs.
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "lib.txt").write_text("runtime file")
    sibling = tmp_path / "other_student.txt"
    sibling.write_text("not yours")
    code = f"""
        import json, os
        print(json.dumps({{"lib": open({str(runtime / "lib.txt")!r}).read(),
                          "sibling": os.path.exists({str(sibling)!r})}}))
    """
    rc, out, err = run_inside(code, tmp_path / "scratch", readonly=[runtime])
    assert rc == 0, err
    assert result(out) == {"lib": "runtime file", "sibling": False}


@needs_bwrap
def test_wall_clock_kill_takes_the_whole_sandbox(tmp_path):
    """Killing bwrap's session kills every process inside, double-forked daemons included."""
    marker = tmp_path / "scratch" / "alive"
    code = """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                while True:
                    open("alive", "a").write("x"); time.sleep(0.1)
            os._exit(0)
        time.sleep(60)
    """
    (tmp_path / "scratch").mkdir()
    cmd = sandbox_command([sys.executable, "-c", textwrap.dedent(code)], workdir=tmp_path / "scratch",
                          readonly_paths=runtime_paths(), env={}, limits=SMALL, use_bwrap=True)
    proc = subprocess.Popen(cmd, start_new_session=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists()
    os.killpg(proc.pid, 9)
    proc.wait(timeout=10)
    time.sleep(0.5)
    size = marker.stat().st_size
    time.sleep(0.5)
    assert marker.stat().st_size == size, "a daemon survived the sandbox"


# ----------------------------------------------------------------------------------- fallback
def test_fallback_applies_limits_and_warns(tmp_path, capsys):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    plan = plan_sandbox([sys.executable, "-c", "import json, os, resource; print(json.dumps("
                         "[resource.getrlimit(resource.RLIMIT_DATA)[0], os.getcwd(), sorted(os.environ)]))"],
                        workdir=scratch, readonly_paths=runtime_paths(), env={"A": "1"},
                        limits=Limits(memory_bytes=3 << 30), use_bwrap=False)
    assert not plan.isolated and not plan.pid_namespace
    assert any("SANDBOX DISABLED" in w for w in plan.warnings)
    proc = subprocess.run(plan.command, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    data, cwd, env = json.loads(proc.stdout)
    assert data == 3 << 30 and cwd == str(scratch) and "A" in env and "GRADER_SECRET" not in env
    sandbox._warned = False
    sandbox.warn_not_isolated("test")
    sandbox.warn_not_isolated("test")
    assert capsys.readouterr().err.count("SANDBOX DISABLED") == 1


def test_fallback_memory_limit(tmp_path):
    rc, out, err = run_inside("""
        try:
            b = bytearray(8 << 30); print("ALLOCATED")
        except MemoryError:
            print("MemoryError")
    """, tmp_path / "scratch", use_bwrap=False)
    assert rc == 0, err
    assert out.strip() == "MemoryError"


SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(SYSTEM_PYTHON),
                    reason="needs root and a system python readable by an unprivileged uid")
def test_fallback_as_root_drops_to_a_uid_with_a_process_limit():
    """Without bwrap, a root host still drops privileges when the runtime allows it."""
    base = Path(tempfile.mkdtemp(prefix="ag-fallback-", dir="/tmp"))   # pytest's tmp is 0700
    try:
        _fallback_uid_checks(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _fallback_uid_checks(base: Path) -> None:
    os.chmod(base, 0o711)
    scratch = base / "scratch"
    scratch.mkdir()
    uid = sandbox.allocate_uid()
    plan = plan_sandbox([SYSTEM_PYTHON, "-I", "-c", textwrap.dedent(FORK_STORM)], workdir=scratch,
                        readonly_paths=[], env={}, limits=Limits(max_processes=30),
                        use_bwrap=False, python=SYSTEM_PYTHON, uid=uid)
    if plan.uid is None:
        pytest.skip("the system python is not readable by others here: " + "; ".join(plan.warnings))
    proc = subprocess.run(plan.command, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    seen = result(proc.stdout)
    assert seen["blocked"] and seen["forked"] < 30
    # kill_uid: a stray left by that uid dies.
    stray = subprocess.Popen([SYSTEM_PYTHON, "-c", "import time; time.sleep(60)"], user=uid, group=uid,
                             extra_groups=[], cwd="/", start_new_session=True)
    sandbox.kill_uid(uid)
    assert stray.wait(timeout=10) == -9


def test_allocate_uid_distinct_and_unprivileged():
    uids = {sandbox.allocate_uid() for _ in range(16)}
    assert len(uids) == 16 and all(20000 <= u < 60000 for u in uids)


def test_runtime_paths_expose_packages_not_the_repository():
    paths = runtime_paths()
    assert Path(sys.prefix) in paths or any(p in Path(sys.prefix).parents for p in paths)
    assert REPO not in paths and REPO / "solutions" not in paths
    assert not any(p == Path("/") for p in paths)
