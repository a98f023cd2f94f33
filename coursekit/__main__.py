"""``python -m coursekit fetch [--data-dir D]``: fetch and verify MNIST once, before the lessons.

The lessons read the digits from disk and never download; this is how they get there, in the
course folder and in the student environment alike. Exit status 1 with one line saying what
to do when no source gives good files.
"""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    fetch = commands.add_parser("fetch", help="fetch and verify MNIST into the data folder")
    fetch.add_argument("--data-dir", metavar="D", default=None,
                       help="where MNIST lives (default: $MNIST_DATA_DIR, then course.yml data.root, then ~/.cache/mnist_cnn)")
    args = parser.parse_args(argv)

    from coursekit import config
    from coursekit.fetch import DataError, fetch as fetch_mnist

    try:
        where = fetch_mnist(args.data_dir)
    except (DataError, config.ConfigError) as err:
        print(f"python -m coursekit fetch: {err}", file=sys.stderr)
        return 1
    print(f"MNIST is ready in {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
