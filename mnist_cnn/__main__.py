"""``python -m mnist_cnn``: the command line (see mnist_cnn.cli)."""
import sys

from mnist_cnn.cli import main

sys.exit(main())
