#!/usr/bin/env python
"""Training throughput: netdyn's packed trainer against its single-run trainer and a seed-style loop, and the
projected wall time of a study config. The code is in bench/throughput/ (one module per concern); what is
timed is documented there and in the JSON's settings.what_is_timed. ``--help`` lists the options.

    .venv/bin/python bench/train_throughput.py --device cpu --quick --out bench/results/train_throughput_cpu.json
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.throughput.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
