#!/usr/bin/env python
"""invbench command line: run | table | plot | list (see `python run_bench.py --help`)."""
import sys

from bench.threads import calm_openmp

calm_openmp()  # before torch is imported: waiting OpenMP threads sleep, not spin (bench/threads.py)

from bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
