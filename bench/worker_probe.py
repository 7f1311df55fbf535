"""Run ``python -m <module> …`` (a Celery worker) and report a few of its main process's internals.

    python bench/worker_probe.py [python] -m celery -A workflow_engine worker …

(``Cluster.start_worker(wrap=[sys.executable, "bench/worker_probe.py"])`` gives exactly that.) Every
``PROBE_EVERY`` seconds (10) the main process, and only it (the pool's children are forked without this
thread), appends one JSON line to ``PROBE_OUT``: the length of the event loop's timer heap, how many of its
entries are cancelled, and the size of Celery's set of recently successful task ids. bench/memory.py uses
it to tell what the main process holds; reading them costs a ``len`` and one pass over the heap.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import threading
import time


def probe(out: str, every: float, main_pid: int) -> None:
    t0 = time.monotonic()
    while True:
        time.sleep(every)
        if os.getpid() != main_pid:
            return
        from celery.worker import state
        from kombu.asynchronous import get_event_loop

        hub = get_event_loop()
        queue = list(hub.timer._queue) if hub is not None else []
        row = {
            "t": round(time.monotonic() - t0, 1),
            "timer_entries": len(queue),
            "timer_cancelled": sum(1 for e in queue if getattr(e.entry, "canceled", False)),
            "successful_requests": len(state.successful_requests),
        }
        with open(out, "a") as f:
            f.write(json.dumps(row) + "\n")


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] != "-m":  # the interpreter's path, as Cluster.start_worker puts it first
        args = args[1:]
    if len(args) < 2 or args[0] != "-m":
        raise SystemExit("usage: worker_probe.py [python] -m <module> [args...]")
    out = os.environ.get("PROBE_OUT")
    if out:
        every = float(os.environ.get("PROBE_EVERY", "10"))
        threading.Thread(target=probe, args=(out, every, os.getpid()), daemon=True, name="probe").start()
    sys.path[0] = os.getcwd()  # as ``python -m`` has it
    sys.argv = [args[1], *args[2:]]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
