#!/usr/bin/env python
"""invbench command line: run | table | plot | list (see `python run_bench.py --help`)."""
import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
