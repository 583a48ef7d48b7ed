"""Run measurement jobs in worker processes, so a crash or a hang costs a row, not the kernel.

:class:`Worker` is one long-lived worker process. Objects given when it starts (``bound``: a
candidate) are shipped ONCE with ``cloudpickle`` (so lambdas and closures defined in a notebook
cell work) and passed first to every job; ``worker.call(job, *args, on_progress=cb,
timeout_s=t)`` runs ``job(*bound, *args, report=send)`` there and returns its result. A worker
stays alive between calls: the torch runtime, its thread pools, a CUDA context and FLOP
counting's tracing machinery are set up once per worker (``init=``), not once per call.
:class:`WorkerPool` keeps at most ``max_live`` workers, one per key (a candidate's name), and
replaces a worker that died. :func:`run_isolated` is one job in a fresh worker that is ended
afterwards.

Workers come from a ``forkserver`` context (``spawn`` where there is none): never a plain
``fork`` of a process whose torch thread pools are already running, which can deadlock.

* ``send(message)`` inside the job passes any picklable progress message back; the parent
  calls ``on_progress(message)`` as it arrives (this is how the tqdm bar keeps moving).
* An exception raised by the job is re-raised in the parent (the original exception when it
  can be pickled, else :class:`~effplan.errors.MeasurementError` with its type and message);
  the worker lives on and takes the next job.
* A worker that dies -- ``os._exit``, a segfault, the kernel's out-of-memory killer --
  raises :class:`WorkerCrashed`, whose message says how it died. The parent lives on.
* A job that runs longer than ``timeout_s`` (wall clock, from the moment it is sent) raises
  :class:`WorkerTimeout` ("timed out after N s"); the worker is killed (SIGKILL), so a
  forward pass stuck in native code is stopped too. Starting a worker (imports, ``init``) has
  its own limit, :data:`START_TIMEOUT_S`.
* :func:`can_ship` tells beforehand whether a job can be shipped at all; when it cannot, the
  caller runs it in its own process and says so (``isolation`` on the measurement row).

Workers ignore SIGINT: Ctrl-C is handled by the parent, which ends them. A worker also ends
itself when the process that started it is gone: a thread of the worker blocks on a "lifeline"
pipe whose other end only the parent holds, and that the kernel closes when the parent dies
(even by SIGKILL). So a killed driver leaves no worker running a hung forward pass behind
(unless native code holds the GIL for ever, which stops the thread too).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from ..errors import MeasurementError
from ..units import KIB_PER_MIB

__all__ = ["run_isolated", "can_ship", "Worker", "WorkerPool", "WorkerCrashed", "WorkerTimeout",
           "start_method", "rss_mib", "START_TIMEOUT_S"]

#: A worker must be ready (imported, ``init`` done) within this many seconds of being started.
START_TIMEOUT_S = 300.0
#: How often the parent checks a running job for its worker's death and its time limit, s.
_POLL_S = 0.05


class WorkerCrashed(MeasurementError):
    """The worker process died without returning a result (crash, os._exit, OOM kill)."""


class WorkerTimeout(WorkerCrashed):
    """The job ran longer than its time limit; its worker process was killed."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = float(timeout_s)
        super().__init__(f"timed out after {timeout_s:g} s; its worker process was killed")


def start_method() -> str:
    """``forkserver`` where the platform has it (Linux, macOS), else ``spawn``."""
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def _context() -> Any:
    ctx = mp.get_context(start_method())
    if start_method() == "forkserver":
        # the server imports these once; each worker is forked from it with torch already
        # imported but no thread pool started (importing torch starts none)
        preload = ["torch", "effplan.bench.points", "effplan.flops", "effplan.devices.energy",
                   "effplan.refdata.catalog", "effplan.devices.hardware"]
        if "torchao" in sys.modules:  # slim variants build torchao models: import it (seconds) once,
            preload.append("effplan.bench.torchao_preload")  # in the server, not in every worker
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
                    return int(line.split()[1]) / KIB_PER_MIB
    except OSError:
        pass
    return float("nan")


def _watch_parent(lifeline: Any) -> None:  # a daemon thread in the worker process
    """End this worker when the process that started it is gone. Nothing is ever sent on
    ``lifeline``: ``recv`` returns only with EOF, when the parent's end is closed -- by the parent
    ending the worker, or by the kernel when the parent died (even by SIGKILL). The thread
    sleeps in one blocking read, so it does not disturb the timing."""
    try:
        lifeline.recv()
    except (EOFError, OSError):
        pass
    os._exit(0)


def _worker_main(conn: Any, lifeline: Any, payload: bytes) -> None:  # runs in the worker process
    import threading

    import cloudpickle

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(lifeline,), daemon=True,
                     name="effplan-worker-lifeline").start()

    def send(message: Any) -> None:
        conn.send(("progress", message))

    def failed(exc: BaseException) -> tuple:
        try:
            blob = cloudpickle.dumps(exc)
        except Exception:  # an exception that cannot be pickled travels as text
            blob = None
        return ("error", blob, type(exc).__name__, str(exc), traceback.format_exc())

    try:
        init, init_args, bound = cloudpickle.loads(payload)
        if init is not None:
            init(*init_args)
    except BaseException as exc:  # reported to the parent as a failed start
        conn.send(failed(exc))
        conn.close()
        return
    conn.send(("ready", os.getpid()))
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):  # the parent is gone
                return
            if msg[0] != "call":
                return  # "stop"
            try:
                job, args, kwargs = cloudpickle.loads(msg[1])
                result = job(*bound, *args, report=send, **kwargs)
                conn.send(("result", cloudpickle.dumps(result)))
            except BaseException as exc:  # the parent re-raises it; the worker takes the next job
                conn.send(failed(exc))
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


def _reraise(msg: tuple) -> None:
    import cloudpickle

    _, blob, name, text, _tb = msg
    exc = None
    if blob is not None:
        try:
            exc = cloudpickle.loads(blob)
        except Exception:  # the exception class cannot be rebuilt here: use its text
            exc = None
    if isinstance(exc, BaseException):
        raise exc
    raise MeasurementError(f"{name}: {text}")


class Worker:
    """One worker process that runs jobs one after another (see the module docstring).

    ``Worker(*bound, init=f, init_args=(...))`` starts the process and waits until it is ready:
    ``bound`` is unpickled there once and ``init(*init_args)`` run (imports, thread count,
    warm-up). :attr:`pid` is its process id, :attr:`calls` the jobs it has run. A worker whose
    job crashed it or ran past its time limit is dead (:attr:`alive` False); start another.
    """

    def __init__(self, *bound: Any, init: Callable[..., Any] | None = None, init_args: tuple = (),
                 start_timeout_s: float = START_TIMEOUT_S) -> None:
        import cloudpickle

        payload = cloudpickle.dumps((init, tuple(init_args), tuple(bound)))
        ctx = _context()
        self._conn, child = ctx.Pipe(duplex=True)
        life_r, self._lifeline = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_worker_main, args=(child, life_r, payload), daemon=True,
                                 name="effplan-measure-worker")
        self.calls = 0
        self.pid: int | None = None
        with _main_module_hidden():
            self._proc.start()
        child.close()
        life_r.close()
        try:
            msg = self._wait(start_timeout_s, None, starting=True)
        except BaseException:
            self.kill()
            raise
        if msg[0] == "error":
            self.kill()
            _reraise(msg)
        self.pid = int(msg[1])

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def _wait(self, timeout_s: float | None, on_progress: Callable[[Any], Any] | None, *,
              starting: bool = False) -> tuple:
        """The next result / error / ready message; progress goes to ``on_progress``."""
        t0 = time.monotonic()
        while True:
            if self._conn.poll(_POLL_S):
                try:
                    msg = self._conn.recv()
                except (EOFError, OSError):  # the worker died mid-message or before sending anything
                    self._proc.join(5)
                    code = self._proc.exitcode
                    self.kill()
                    raise WorkerCrashed(_describe_exit(code)) from None
                if msg[0] == "progress":
                    if on_progress is not None:
                        on_progress(msg[1])
                    continue
                return msg
            if not self._proc.is_alive():
                if self._conn.poll(0):
                    continue  # a last message is waiting
                self._proc.join(5)
                code = self._proc.exitcode
                self.kill()
                raise WorkerCrashed(_describe_exit(code) + (" while starting" if starting else ""))
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                self.kill()
                if starting:
                    raise WorkerCrashed(f"the worker process did not start within {timeout_s:g} s")
                raise WorkerTimeout(timeout_s)

    def call(self, job: Callable[..., Any], *args: Any, on_progress: Callable[[Any], Any] | None = None,
             timeout_s: float | None = None, **kwargs: Any) -> Any:
        """``job(*bound, *args, report=send, **kwargs)`` in this worker; its result, or its
        exception re-raised here; :class:`WorkerCrashed` / :class:`WorkerTimeout` (the worker is
        then dead)."""
        import cloudpickle

        if not self.alive:
            raise WorkerCrashed("the worker process is not running (it crashed or was ended earlier)")
        payload = cloudpickle.dumps((job, args, kwargs))
        self.calls += 1
        try:
            self._conn.send(("call", payload))
        except (BrokenPipeError, OSError):
            self._proc.join(5)
            code = self._proc.exitcode
            self.kill()
            raise WorkerCrashed(_describe_exit(code)) from None
        try:
            msg = self._wait(timeout_s, on_progress)
        except BaseException:  # Ctrl-C in the parent (or a crash): the job is abandoned with its worker
            self.kill()
            raise
        if msg[0] == "result":
            return cloudpickle.loads(msg[1])
        _reraise(msg)

    def close(self, timeout_s: float = 2.0) -> None:
        """Ask the worker to stop; kill it if it has not within ``timeout_s``."""
        if self._proc is None:
            return
        if self._proc.is_alive():
            try:
                self._conn.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
            self._proc.join(timeout_s)
        self.kill()

    def kill(self) -> None:
        """End the worker at once (SIGKILL) and release its pipe."""
        proc = self._proc
        if proc is None:
            return
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        for end in (self._conn, self._lifeline):
            try:
                end.close()
            except OSError:
                pass
        try:
            proc.close()
        except ValueError:  # still running after the kill (should not happen): leave it to the OS
            pass
        self._proc = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class WorkerPool:
    """Workers kept alive by key (one per candidate), at most ``max_live`` at a time.

    :meth:`call` runs a job in the key's worker, starting one (with ``bound`` objects and the
    pool's ``init``) when the key has none or its worker died; beyond ``max_live`` the least
    recently used worker is closed. ``reuse=False`` ends the worker after every call (a fresh
    worker per job). :attr:`started` counts the workers started so far.
    """

    def __init__(self, max_live: int = 4, *, init: Callable[..., Any] | None = None, init_args: tuple = (),
                 reuse: bool = True) -> None:
        if not isinstance(max_live, int) or max_live < 1:
            raise ValueError(f"max_live must be a positive integer, got {max_live!r}")
        self.max_live, self.init, self.init_args, self.reuse = max_live, init, tuple(init_args), reuse
        self._live: OrderedDict[Hashable, Worker] = OrderedDict()
        self.started = 0

    def worker(self, key: Hashable, *bound: Any) -> Worker:
        """The live worker of ``key``, started (with ``bound``) if needed."""
        w = self._live.get(key)
        if w is not None and w.alive:
            self._live.move_to_end(key)
            return w
        self.discard(key)
        while len(self._live) >= self.max_live:
            _, old = self._live.popitem(last=False)
            old.close()
        w = Worker(*bound, init=self.init, init_args=self.init_args)
        self.started += 1
        self._live[key] = w
        return w

    def call(self, key: Hashable, bound: tuple, job: Callable[..., Any], *args: Any,
             on_progress: Callable[[Any], Any] | None = None, timeout_s: float | None = None,
             **kwargs: Any) -> tuple[Any, int]:
        """``(result, worker pid)`` of ``job`` in the worker of ``key`` (see :meth:`Worker.call`)."""
        w = self.worker(key, *bound)
        pid = int(w.pid or 0)
        try:
            return w.call(job, *args, on_progress=on_progress, timeout_s=timeout_s, **kwargs), pid
        finally:
            if not w.alive or not self.reuse:
                self.discard(key)

    def discard(self, key: Hashable) -> None:
        """Close the worker of ``key`` (if any)."""
        w = self._live.pop(key, None)
        if w is not None:
            w.close()

    def close(self) -> None:
        """Close every worker."""
        while self._live:
            _, w = self._live.popitem()
            w.close()

    @property
    def live(self) -> int:
        return sum(1 for w in self._live.values() if w.alive)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def run_isolated(job: Callable[..., Any], *args: Any, on_progress: Callable[[Any], Any] | None = None,
                 timeout_s: float | None = None, **kwargs: Any) -> Any:
    """``job(*args, report=send, **kwargs)`` in a fresh worker process, ended afterwards; see the
    module docstring."""
    w = Worker()
    try:
        return w.call(job, *args, on_progress=on_progress, timeout_s=timeout_s, **kwargs)
    finally:
        w.close()
