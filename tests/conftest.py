"""Tests run offline on the CPU: no task may try to download anything."""
import os

os.environ["INVBENCH_OFFLINE"] = "1"
