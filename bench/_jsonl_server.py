"""The worker side of the benchmarks' JSON-lines servers (``bench/_torch_transform.py``, ``bench/_stlite_worker.py``).

Standard library only: the workers run in throwaway venvs and import this file from their own folder.
One JSON command per line on stdin (``{"cmd": name, **kwargs}``), one JSON reply per line on stdout
(``{"ok": true, **result}`` or ``{"ok": false, "error": ...}``); ``quit`` replies with the peak RSS and ends.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    """``time.perf_counter`` seconds of ``reps`` calls of ``fn``, one each."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def serve(handlers: Mapping[str, Callable[..., dict[str, Any]]]) -> int:
    """Answer commands until ``quit`` or end of input; a failing command is reported and serving goes on."""
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        name = command.pop("cmd")
        if name == "quit":
            print(json.dumps({"ok": True, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}),
                  flush=True)
            return 0
        try:
            reply = {"ok": True, **handlers[name](**command)}
        except Exception as err:  # report to the driver, keep serving
            traceback.print_exc(file=sys.stderr)
            reply = {"ok": False, "error": f"{type(err).__name__}: {err}"}
        print(json.dumps(reply), flush=True)
    return 0
