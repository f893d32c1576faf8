"""Kill points, so kill-safety tests can SIGKILL the real code path at a chosen moment.

`SLUICEWAY_KILL_AT=<point>[@<n>]` makes the n-th arrival (default the first) at
`reached("<point>")` kill the whole process group with SIGKILL: the Python driver and its
Spark JVM die together, as they do when a container or an instance goes away. Nothing
else reads the variable; unset, `reached` only counts. Points are named
`<phase>:<dataset>` (`swap:orders`, `commit:lineitem`), so a test says exactly what it hits.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter

ENV = "SLUICEWAY_KILL_AT"
_arrivals: Counter[str] = Counter()


def reached(point: str) -> None:
    """Mark that the run has reached `point`; die here if a test armed it."""
    armed = os.environ.get(ENV)
    if not armed:
        return
    name, _, nth = armed.partition("@")
    if name != point:
        return
    _arrivals[point] += 1
    if _arrivals[point] != int(nth or 1):
        return
    # The test reads this line to know which phase it hit; stderr is unbuffered enough
    # after an explicit flush, and nothing after the kill runs.
    sys.stderr.write(f"sluiceway: killed at {point} (arrival {_arrivals[point]})\n")
    sys.stderr.flush()
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
