"""How fast do the course's recipes train on this machine?

For each recipe (``fast``, ``course``) and seed, a fresh Python process trains ``Net`` on
the real MNIST, scoring the test set after every epoch, and this script prints:

    cold s      process start -> first training step (Python, torch, data, model, optimizer)
    to 98% s    training seconds until the first epoch end at >= 98% test accuracy
    to 99% s    the same for 99%   ("-" if never reached in the epochs run)
    train s     training seconds in all (the per-epoch test scoring is not counted)
    final acc   test accuracy after the last epoch
    threads     torch.get_num_threads() in the training process (left as torch sets them)
    other cpu   CPU-seconds per second used by OTHER processes while training (0 = quiet
                machine; 1 = one core busy elsewhere: the timings of that row are unreliable)

The course recipe (batch 4) takes minutes per 10 epochs, so by default it runs only
``--course-epochs 2`` of them (its learning rate is constant, so those epochs are exactly
the first two of the full recipe). The fast recipe runs as in course.yml.

    python benchmarks/train.py                   # both recipes, seed 0
    python benchmarks/train.py --recipes fast --seeds 5
    python benchmarks/train.py --recipes fast --threads 1   # steadier on a shared machine
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

THRESHOLDS = (0.98, 0.99)


def _busy_cpu_seconds() -> float | None:
    """CPU-seconds all processes on this machine have spent busy, from /proc/stat (None if absent)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(args: argparse.Namespace) -> None:
    """One training run in this (fresh) process; prints one JSON line of figures."""
    spawned = args.spawned_at                       # time.time() in the parent just before the spawn
    marks = {"python": time.time()}
    import torch

    from coursekit.config import load
    from coursekit.fetch import load_mnist
    from mnist_cnn.evaluate import evaluate
    from mnist_cnn.model import Net
    from mnist_cnn.train import pick_device, set_seed, to_tensors, train
    marks["imports"] = time.time()
    if args.threads:
        torch.set_num_threads(args.threads)

    course = load()
    recipe = course.recipe(args.child)
    if args.epochs:
        import dataclasses
        recipe = dataclasses.replace(recipe, epochs=args.epochs)
    device = pick_device(args.device)
    quiet = lambda message: None  # noqa: E731
    x, y = to_tensors(*load_mnist("train", root=args.data_dir, log=quiet), standardize=recipe.standardize)
    x_test, y_test = to_tensors(*load_mnist("test", root=args.data_dir, log=quiet), standardize=recipe.standardize)
    marks["data"] = time.time()

    set_seed(args.seed)
    model = Net()
    state = {"first_step": None, "eval_s": 0.0, "busy0": None, "own0": None}

    def first_forward(module, inputs):
        state["first_step"] = time.time()
        state["clock0"] = time.perf_counter()
        state["busy0"], state["own0"] = _busy_cpu_seconds(), _own_cpu_seconds()
        handle.remove()

    handle = model.register_forward_pre_hook(first_forward)
    epochs = []

    def on_epoch_end(epoch, trained):
        now = time.perf_counter()
        train_s = now - state["clock0"] - state["eval_s"]  # training seconds so far, scoring excluded
        accuracy = evaluate(trained, x_test, y_test, batch_size=course.evaluation.batch_size,
                            device=device).accuracy
        epochs.append((epoch, train_s, accuracy))
        state["eval_s"] += time.perf_counter() - now

    result = train(model, recipe, x, y, device=device, seed=args.seed, progress=False,
                   log=lambda line: None, on_epoch_end=on_epoch_end)
    wall = time.perf_counter() - state["clock0"]
    busy1, own1 = _busy_cpu_seconds(), _own_cpu_seconds()
    other = None
    if state["busy0"] is not None and busy1 is not None:
        other = max(0.0, ((busy1 - state["busy0"]) - (own1 - state["own0"])) / wall)
    print(json.dumps({
        "recipe": args.child, "seed": args.seed, "epochs": recipe.epochs, "batch_size": recipe.batch_size,
        "threads": torch.get_num_threads(), "device": str(device),
        "cold_s": state["first_step"] - spawned,
        "cold_parts": {"python": marks["python"] - spawned, "imports": marks["imports"] - marks["python"],
                       "data": marks["data"] - marks["imports"], "setup": state["first_step"] - marks["data"]},
        "epochs_run": epochs, "train_s": result.seconds, "steps": result.steps, "other_cpu": other,
    }))


def run_one(recipe: str, seed: int, args: argparse.Namespace) -> dict:
    """Train in a fresh process (so the cold start is real) and return its figures."""
    command = [sys.executable, os.path.abspath(__file__), "--child", recipe, "--seed", str(seed),
               "--device", args.device]
    if recipe == "course":
        command += ["--epochs", str(args.course_epochs)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if args.threads:
        command += ["--threads", str(args.threads)]
    command += ["--spawned-at", repr(time.time())]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"benchmark run {recipe} seed {seed} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fmt(value, spec=".1f", none="-"):
    return none if value is None else format(value, spec)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", default="fast,course", help="comma-separated recipes (default: fast,course)")
    parser.add_argument("--seeds", type=int, default=1, help="run seeds 0..N-1 of each recipe (default: 1)")
    parser.add_argument("--course-epochs", type=int, default=2,
                        help="epochs of the course recipe (default: 2; the full recipe is 10, minutes)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: cpu)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in the training process (default: as torch sets them)")
    parser.add_argument("--data-dir", default=None, help="MNIST root (default: as coursekit.fetch finds it)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0

    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    print(f"# {platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}")
    if "course" in recipes:
        print(f"# course recipe: only its first {args.course_epochs} of 10 epochs (--course-epochs); "
              f"'-' = threshold not reached in them")
    print("# times exclude the per-epoch test scoring; 'other cpu' > ~0.3 means a busy machine: distrust that row")
    header = (f"{'recipe':<7} {'seed':>4} {'epochs':>6} {'batch':>5} {'threads':>7} {'cold s':>7} "
              f"{'to 98% s':>8} {'to 99% s':>8} {'train s':>7} {'final acc':>9} {'other cpu':>9}")
    print(header)
    print("-" * len(header))
    rows = []
    for recipe in recipes:
        for seed in range(args.seeds):
            row = run_one(recipe, seed, args)
            rows.append(row)
            reach = {}
            for threshold in THRESHOLDS:
                reach[threshold] = next((s for _, s, acc in row["epochs_run"] if acc >= threshold), None)
            final = row["epochs_run"][-1][2]
            print(f"{recipe:<7} {seed:>4} {row['epochs']:>6} {row['batch_size']:>5} {row['threads']:>7} "
                  f"{row['cold_s']:>7.2f} {_fmt(reach[0.98]):>8} {_fmt(reach[0.99]):>8} {row['train_s']:>7.1f} "
                  f"{final * 100:>8.2f}% {_fmt(row['other_cpu'], '.2f', 'n/a'):>9}", flush=True)
    print()
    print("cold start, mean seconds: " + ", ".join(
        f"{part} {sum(r['cold_parts'][part] for r in rows) / len(rows):.2f}"
        for part in ("python", "imports", "data", "setup")))
    print("  (python: interpreter start; imports: torch and mnist_cnn; data: MNIST to tensors; "
          "setup: model, optimizer (imports torch._dynamo), schedule)")
    for row in rows:
        accs = " ".join(f"{acc * 100:.2f}%@{s:.1f}s" for _, s, acc in row["epochs_run"])
        print(f"{row['recipe']} seed {row['seed']} per epoch: {accs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
