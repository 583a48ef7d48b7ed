"""Run one measurement job in its own worker process, so a crash costs a row, not the kernel.

:func:`run_isolated(job, *args, on_progress=cb)` ships ``job`` and its arguments to a fresh
worker process with ``cloudpickle`` (so lambdas and closures defined in a notebook cell work),
runs ``job(*args, report=send)`` there and returns its result. The worker comes from a
``forkserver`` context (``spawn`` where there is none): never a plain ``fork`` of a process
whose torch thread pools are already running, which can deadlock.

* ``send(message)`` inside the job passes any picklable progress message back; the parent
  calls ``on_progress(message)`` as it arrives (this is how the tqdm bar keeps moving).
* An exception raised by the job is re-raised in the parent (the original exception when it
  can be pickled, else :class:`~effplan.errors.MeasurementError` with its type and message).
* A worker that dies -- ``os._exit``, a segfault, the kernel's out-of-memory killer --
  raises :class:`WorkerCrashed`, whose message says how it died. The parent lives on.
* :func:`can_ship` tells beforehand whether a job can be shipped at all; when it cannot, the
  caller runs it in its own process and says so (``isolation`` on the measurement row).

The worker ignores SIGINT: Ctrl-C is handled by the parent, which ends the worker.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import sys
import signal
import time
import traceback
from collections.abc import Callable
from typing import Any

from .errors import MeasurementError

__all__ = ["run_isolated", "can_ship", "WorkerCrashed", "start_method", "rss_mib"]


class WorkerCrashed(MeasurementError):
    """The worker process died without returning a result (crash, os._exit, OOM kill)."""


def start_method() -> str:
    """``forkserver`` where the platform has it (Linux, macOS), else ``spawn``."""
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def _context() -> Any:
    ctx = mp.get_context(start_method())
    if start_method() == "forkserver":
        # the server imports these once; each worker is forked from it with torch already
        # imported but no thread pool started (importing torch starts none)
        preload = ["torch", "effplan.measurement", "effplan.flops", "effplan.energy", "effplan.catalog",
                   "effplan.hardware"]
        if "torchao" in sys.modules:  # slim variants build torchao models: import it (seconds) once,
            preload.append("effplan._torchao_preload")  # in the server, not in every worker
        ctx.set_forkserver_preload(preload)
    return ctx


@contextlib.contextmanager
def _main_module_hidden() -> Any:
    """Keep multiprocessing from re-running the parent's ``__main__`` in the worker.

    spawn/forkserver workers normally re-import the parent's main script (so that pickled
    functions defined there resolve); an unguarded script would then run again in the worker.
    Everything the worker needs travels in the cloudpickle payload, so the main module is hidden
    from ``Process.start()`` (its ``__spec__`` and ``__file__``) and restored right after.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: getattr(main, k) for k in ("__spec__", "__file__") if hasattr(main, k)}
    try:
        main.__spec__ = None
        if "__file__" in saved:
            del main.__file__
        yield
    finally:
        for k, v in saved.items():
            setattr(main, k, v)


def can_ship(obj: Any) -> tuple[bool, str]:
    """(True, "") when cloudpickle can serialize ``obj``; else (False, the reason)."""
    import cloudpickle

    try:
        cloudpickle.dumps(obj)
    except Exception as exc:  # any pickling failure: the reason is returned to the caller
        return False, f"{type(exc).__name__}: {exc}"
    return True, ""


def rss_mib(field: str = "VmRSS") -> float:
    """This process's resident set (``VmRSS``) or peak (``VmHWM``) from /proc, MiB; NaN elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _worker_main(conn: Any, payload: bytes) -> None:  # runs in the worker process
    import cloudpickle

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def send(message: Any) -> None:
        conn.send(("progress", message))

    try:
        job, args, kwargs = cloudpickle.loads(payload)
        result = job(*args, report=send, **kwargs)
        conn.send(("result", cloudpickle.dumps(result)))
    except BaseException as exc:  # the parent re-raises it; nothing may escape the worker
        try:
            blob = cloudpickle.dumps(exc)
        except Exception:  # an exception that cannot be pickled travels as text
            blob = None
        conn.send(("error", blob, type(exc).__name__, str(exc), traceback.format_exc()))
    finally:
        conn.close()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "the worker process did not exit"
    if code < 0:
        sig = -code
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        why = {"SIGKILL": " (killed: most often the kernel's out-of-memory killer -- try a smaller "
                          "batch size)",
               "SIGSEGV": " (segmentation fault in native code)",
               "SIGABRT": " (aborted by native code)", "SIGBUS": " (bus error in native code)"}.get(name, "")
        return f"the worker process was killed by {name}{why}"
    return f"the worker process exited with code {code} without returning a result"


def run_isolated(job: Callable[..., Any], *args: Any, on_progress: Callable[[Any], Any] | None = None,
                 timeout_s: float | None = None, **kwargs: Any) -> Any:
    """``job(*args, report=send, **kwargs)`` in a fresh worker process; see the module docstring."""
    import cloudpickle

    payload = cloudpickle.dumps((job, args, kwargs))
    ctx = _context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker_main, args=(child, payload), daemon=True,
                       name="effplan-measure-worker")
    with _main_module_hidden():
        proc.start()
    child.close()
    t0 = time.monotonic()
    try:
        while True:
            if parent.poll(0.05):
                try:
                    msg = parent.recv()
                except EOFError:  # the worker died mid-message or before sending anything
                    proc.join(5)
                    raise WorkerCrashed(_describe_exit(proc.exitcode)) from None
                kind = msg[0]
                if kind == "progress":
                    if on_progress is not None:
                        on_progress(msg[1])
                    continue
                if kind == "result":
                    proc.join(5)
                    return cloudpickle.loads(msg[1])
                _, blob, name, text, tb = msg
                proc.join(5)
                exc = None
                if blob is not None:
                    try:
                        exc = cloudpickle.loads(blob)
                    except Exception:  # the exception class cannot be rebuilt here: use its text
                        exc = None
                if isinstance(exc, BaseException):
                    raise exc
                raise MeasurementError(f"{name}: {text}")
            if not proc.is_alive():
                if parent.poll(0):
                    continue  # a last message is waiting
                proc.join(5)
                raise WorkerCrashed(_describe_exit(proc.exitcode))
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                raise WorkerCrashed(f"the worker process ran longer than {timeout_s:g} s and was ended")
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join(2)
            if proc.is_alive():
                proc.kill()
                proc.join(2)
        parent.close()
        try:
            proc.close()
        except ValueError:
            pass
