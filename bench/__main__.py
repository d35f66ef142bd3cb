"""`python -m bench --help`: the benchmark of the command layer on a synthetic network (see bench/README.md)."""

import sys

from bench.cli import main

sys.exit(main())
