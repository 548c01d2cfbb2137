"""Tests run offline on the CPU: no task may try to download anything.

One torch thread per process: pytest runs two workers (``-n 2`` in pytest.ini, for the
2-core CI machine), and the runs the tests start inherit ``OMP_NUM_THREADS``
(``bench.threads.choose_threads`` honours it), so two workers never oversubscribe the
cores, and the learning tests' numbers do not depend on the machine's load (they
differ with the thread count)."""
import os

os.environ["INVBENCH_OFFLINE"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
