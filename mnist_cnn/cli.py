"""The command line: ``python -m mnist_cnn`` (or ``mnist-cnn``) fetch | train | evaluate | predict.

    fetch                      download (or find) and verify MNIST, print where it is
    train                      train Net, print the test accuracy, save model.pt and plots
    evaluate                   score a saved model.pt on the test set, draw its confusion matrix
    predict IMAGE [IMAGE...]   classify pictures of digits with a saved model.pt

Every expected failure (no data, a bad checkpoint, a bad image, a bad course.yml)
is one line ``mnist-cnn: error: <message>`` on stderr and exit status 2; Ctrl-C
exits with 130.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import List, Optional

from coursekit import config
from coursekit import fetch as data
from coursekit.config import ConfigError
from coursekit.fetch import DataError
from coursekit.idx import IdxError
from mnist_cnn import __version__, checkpoint, plots
from mnist_cnn.checkpoint import CheckpointError
from mnist_cnn.predict import ImageError

PROG = "mnist-cnn"
DEFAULT_OUT = Path("runs/latest")
DRY_RUN_OUT = Path("runs/dry-run")
DEFAULT_CHECKPOINT = DEFAULT_OUT / "model.pt"
EXPECTED_ERRORS = (DataError, CheckpointError, ConfigError, ImageError, IdxError, OSError)


class UsageError(Exception):
    """A problem with what was asked for (e.g. a device this machine lacks)."""


def _device(name: str):
    """``train.pick_device`` with its errors turned into UsageError."""
    from mnist_cnn.train import pick_device

    try:
        return pick_device(name)
    except (RuntimeError, ValueError) as err:
        raise UsageError(str(err)) from None


def _positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _load_split(split: str, root: Optional[str], standardize: bool):
    """Test or train split as tensors: images (N, 28, 28) uint8, x (N, 1, 28, 28) float32, y (N,) int64."""
    from mnist_cnn.train import to_tensors

    images, labels = data.load_mnist(split, root)
    x, y = to_tensors(images, labels, standardize=standardize)
    return images, x, y


def _report(evaluation, n: int) -> str:
    """``test accuracy: 99.12% (9912/10000), mean loss 0.0281``."""
    correct = int(round(evaluation.accuracy * n))
    return f"test accuracy: {100 * evaluation.accuracy:.2f}% ({correct}/{n}), mean loss {evaluation.loss:.4f}"


def cmd_fetch(args: argparse.Namespace) -> int:
    """Make sure the four MNIST files are on disk and verified; print where they are."""
    where = data.fetch(args.data_dir)
    print(f"MNIST is ready in {where}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train Net with a recipe, evaluate it on the test set, save model.pt and the plots."""
    from mnist_cnn.evaluate import evaluate
    from mnist_cnn.model import Net
    from mnist_cnn.train import set_seed, train

    course = config.load()
    recipe = course.recipe(args.recipe)
    if args.epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=args.epochs)
    device = _device(args.device)
    out = Path(args.out) if args.out else (DRY_RUN_OUT if args.dry_run else DEFAULT_OUT)

    _, x, y = _load_split("train", args.data_dir, recipe.standardize)
    test_images, x_test, y_test = _load_split("test", args.data_dir, recipe.standardize)

    what = "dry run (a few mini-batches)" if args.dry_run else f"{recipe.epochs} epochs, batch {recipe.batch_size}"
    print(f"training Net with recipe {args.recipe!r}: {what}, on {device}, {len(y)} images, seed {args.seed}")
    set_seed(args.seed)
    model = Net()
    result = train(model, recipe, x, y, device=device, seed=args.seed,
                   dry_run=args.dry_run, progress=not args.no_progress)
    print(f"trained {result.steps} mini-batches in {result.seconds:.1f} s")

    evaluation = evaluate(model, x_test, y_test, batch_size=course.evaluation.batch_size, device=device)
    print(_report(evaluation, len(y_test)))

    paths = [
        checkpoint.save(out / "model.pt", model, recipe_name=args.recipe, recipe=recipe,
                        accuracy=evaluation.accuracy, history=result.history,
                        epoch_losses=result.epoch_losses),
        plots.loss_curve(result.history, out / "loss_curve.png", epoch_losses=result.epoch_losses,
                         steps=result.steps, title=f"Training loss, recipe {args.recipe!r}"),
        plots.confusion_matrix(evaluation.confusion, out / "confusion_matrix.png"),
        plots.misclassified_grid(test_images, y_test.numpy(), evaluation.predictions,
                                 out / "misclassified.png"),
    ]
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a checkpoint on the test set; print per-class accuracy; draw the confusion matrix."""
    from mnist_cnn.evaluate import evaluate

    course = config.load()
    device = _device(args.device)
    model, meta = checkpoint.load(args.checkpoint, device=device)
    _, x, y = _load_split("test", args.data_dir, meta["standardize"])
    evaluation = evaluate(model, x, y, batch_size=course.evaluation.batch_size, device=device)

    print(f"checkpoint {args.checkpoint} (recipe {meta['recipe_name']!r})")
    print(_report(evaluation, len(y)))
    counts = evaluation.confusion.sum(axis=1)
    print("digit  count  accuracy")
    for digit, (count, accuracy) in enumerate(zip(counts, evaluation.per_class)):
        shown = "     -" if count == 0 else f"{100 * accuracy:6.2f}%"
        print(f"{digit:5d}  {count:5d}   {shown}")
    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    path = plots.confusion_matrix(evaluation.confusion, out / "confusion_matrix.png")
    print(f"wrote {path}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Print ``digit.png: 7 (p=0.998)`` for each image."""
    from mnist_cnn.predict import predict

    device = _device(args.device)
    model, meta = checkpoint.load(args.checkpoint, device=device)
    results = predict(model, args.images, standardize=meta["standardize"], device=device)
    for image, (digit, probability, _) in zip(args.images, results):
        print(f"{image}: {digit} (p={probability:.3f})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with the four subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train, evaluate and use the course's MNIST CNN.",
        epilog="Start with `mnist-cnn train` (fetches MNIST on first use); see `mnist-cnn COMMAND --help`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def data_dir(p):
        p.add_argument("--data-dir", metavar="D", default=None,
                       help="where MNIST lives (default: $MNIST_DATA_DIR, then course.yml data.root, then ~/.cache/mnist_cnn)")

    def device(p):
        p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                       help="where to run (default: auto, CUDA when available)")

    def ckpt(p):
        p.add_argument("--checkpoint", metavar="PATH", default=str(DEFAULT_CHECKPOINT),
                       help=f"the trained model (default: {DEFAULT_CHECKPOINT})")

    p = commands.add_parser("fetch", help="download (or find) and verify MNIST",
                            description="Make sure the four MNIST files are on disk and verified.")
    data_dir(p)
    p.set_defaults(func=cmd_fetch)

    p = commands.add_parser("train", help="train the model, print test accuracy, save model and plots",
                            description="Train Net, evaluate it on the test set, save model.pt and PNG plots.")
    p.add_argument("--recipe", choices=["fast", "course"], default="fast",
                   help="training recipe from course.yml (default: fast)")
    p.add_argument("--epochs", type=_positive_int, metavar="N", default=None,
                   help="override the recipe's number of epochs")
    p.add_argument("--seed", type=int, metavar="S", default=0, help="random seed (default: 0)")
    device(p)
    data_dir(p)
    p.add_argument("--out", metavar="DIR", default=None,
                   help=f"output folder (default: {DEFAULT_OUT}; {DRY_RUN_OUT} with --dry-run)")
    p.add_argument("--dry-run", action="store_true", help="train a few mini-batches only (smoke test)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("evaluate", help="score a saved model on the test set",
                            description="Print test accuracy, mean loss and per-class accuracy; "
                                        "write confusion_matrix.png.")
    ckpt(p)
    data_dir(p)
    device(p)
    p.add_argument("--out", metavar="DIR", default=None,
                   help="folder for confusion_matrix.png (default: the checkpoint's folder)")
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser("predict", help="classify pictures of digits",
                            description="Classify pictures of single digits (PNG, JPEG, ...; any size, "
                                        "dark on light or light on dark).")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    ckpt(p)
    device(p)
    p.set_defaults(func=cmd_predict)
    return parser


def _one_line(err: BaseException) -> str:
    """The error's message on one line (whitespace runs, newlines included, become one space)."""
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line. argv: the arguments (default sys.argv[1:]). Returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except SystemExit as exit_:  # argparse: --help, --version (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    except (UsageError, *EXPECTED_ERRORS) as err:
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 2
