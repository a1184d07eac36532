"""Many environments at once: the same work, split over forked worker processes.

`render --all` and `validate` compile every environment independently, so on a
machine with several CPUs they are split over worker processes. The workers are
forked (no re-import, no re-parse: each starts with everything the parent has
imported, compiled and cached), each takes the next item from a queue they share
(so one that meets the slow environments takes fewer: a fixed share of every w-th
item left one worker ~100 ms behind the other on 100 preview instances), and sends
back only plain picklable data (file texts, Problems) over a pipe; the parent puts the
results back in item order, so what the command prints, writes and exits with is
exactly what the serial loop gives. The workers are forked before any item runs:
each then builds what its items reuse (validators, templates, schemas) in parallel
with the others, which costs the same wall time as the parent building it once
before forking, while what only one item needs (the one environment with the
monitoring stack, say) no longer holds up every worker (~25 ms of a render --all
of 100 preview instances).

Where forking does not pay or is not safe, the same loop runs in this process:
few items (see PER_WORKER), one CPU, a platform without a dependable fork
(Windows, macOS), another thread running, or `--jobs 1` / `ENVSPEC_JOBS=1`.

Never a hang and never a lost error: a worker that dies (a signal, `os._exit`)
is reported through `lost` for the item it was working on (each worker says which
item it starts before it starts it), the other workers take what is left, and the
parent does whatever none did; Ctrl-C or SIGTERM kills the workers, and every worker is reaped.
"""

from __future__ import annotations

import gc
import math
import os
import pickle
import signal
import sys
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TypeVar

from envspec.errors import Location, Problem, SpecError

I = TypeVar("I")
R = TypeVar("R")

JOBS_ENV = "ENVSPEC_JOBS"
# Environments per worker below which another worker costs more than it saves. A worker costs
# ~15-20 ms of CPU (fork, then copy-on-write faults as it touches the parent's objects) against
# ~7 ms to compile and write out a preview environment and ~30 ms to validate one (three
# compiles at the parameter's bounds, plus schemas). Measured on 2 CPUs, 2 workers against one
# process: render --all 1.02x the time at 10 environments, 0.90x at 12, 0.85x at 16; validate
# 1.04x at 4, 0.94x at 6, 0.77x at 8 (issue 14's report). Since the workers fork before the first
# item (each building its own caches, in parallel), render --all at 12 is 0.92x (0.97x before).
PER_WORKER = 12  # render --all
PER_WORKER_VALIDATE = 4
_CHUNK = 1 << 20
# The queue holds (first, end) index ranges of 8 bytes, all written before the first fork (no worker
# reads it yet), so they must fit what the pipe holds: 64 KiB by default, but only 4 or 8 KiB for a
# user past fs.pipe-user-pages-soft. At most half of what it holds is used: 4096 ranges, one item
# each up to that many items, in a default pipe.
_PAGE = 4096


def parse_jobs(value: str | None, where: str) -> int | None:
    """`--jobs` / `ENVSPEC_JOBS`: a count of worker processes, or None for one per CPU ("auto", unset)."""
    if value is None or value.strip().lower() in ("", "auto"):
        return None
    text = value.strip()
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise SpecError([Problem(f"must be a whole number >= 1 or 'auto' (got {value!r})", Location(where))])


def requested_jobs(option: str | None) -> int | None:
    """The command's --jobs, else ENVSPEC_JOBS, else None (decide by CPUs and item count)."""
    if option is not None:
        return parse_jobs(option, "--jobs")
    return parse_jobs(os.environ.get(JOBS_ENV), JOBS_ENV)


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, as taskset and cgroup cpusets set it)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Fork only where it is dependable: not on Windows (no fork), not on macOS (system libraries
    are not fork-safe), and never with another thread alive (it could hold a lock the child needs)."""
    return (hasattr(os, "fork") and hasattr(signal, "pthread_sigmask") and sys.platform != "darwin"
            and threading.active_count() == 1)


def worker_count(items: int, requested: int | None, per_worker: int = PER_WORKER) -> int:
    """How many worker processes for `items` items; 1 means the serial loop in this process.

    An explicit count is taken as asked (at most one per item); by default, one per CPU but
    never fewer than `per_worker` items each.
    """
    if items < 2 or not can_fork():
        return 1
    if requested is not None:
        return max(1, min(requested, items))
    return max(1, min(available_cpus(), math.ceil(items / per_worker)))


@dataclass
class _Worker:
    pid: int
    fd: int
    current: int | None = None  # the item it said it started and has not sent yet
    buffer: bytearray = field(default_factory=bytearray)
    reaped: bool = False
    status: int | None = None  # os.waitstatus_to_exitcode once reaped (None: unknown)

    def frames(self) -> list[tuple[int, bool | None, object]]:
        """The complete (index, ok, payload) frames received so far (ok None: the item is started); a
        partial one stays buffered."""
        out, start = [], 0
        while len(self.buffer) - start >= 8:
            size = int.from_bytes(self.buffer[start:start + 8], "little")
            if len(self.buffer) - start < 8 + size:
                break
            out.append(pickle.loads(self.buffer[start + 8:start + 8 + size]))
            start += 8 + size
        del self.buffer[:start]
        return out


def map_in_workers(
    items: Sequence[I], work: Callable[[I], R], *, workers: int, lost: Callable[[I, str], R]
) -> list[R]:
    """[work(item) for item in items], in `workers` forked processes when workers > 1.

    `work` runs in the workers, so its results must pickle (plain data: no models, no open files).
    An exception it raises is raised here, at the first item that raised it, as the serial loop
    would. `lost(item, why)` stands in for the result of the item a worker died on; items no worker
    got to are done here.
    """
    if workers <= 1 or len(items) < 2:
        return [work(item) for item in items]
    results: dict[int, tuple[bool, object]] = {}
    count = min(workers, len(items))
    previous = _on_sigterm(_terminated)  # a CI or Argo CD timeout ends the workers with this process
    procs: list[_Worker] = []  # filled as they are forked: an interruption at any point kills those there are
    try:
        try:
            _start(items, work, count, procs)
            _collect(procs, results)
        except BaseException:
            for proc in procs:
                _kill(proc)
            raise
        finally:
            for proc in procs:
                _reap(proc)
    finally:
        _on_sigterm(previous)
    for proc in procs:  # the item a dead worker was on is lost; what no worker did is done below
        if proc.current is not None and proc.current not in results:
            results[proc.current] = (True, lost(items[proc.current], _death(proc.status)))
    out: list[R] = []
    for index, item in enumerate(items):
        if index not in results:
            out.append(work(item))
            continue
        ok, payload = results[index]
        if not ok:
            raise payload  # type: ignore[misc]
        out.append(payload)  # type: ignore[arg-type]
    return out


class Terminated(SystemExit):
    """SIGTERM while workers run: raised in the parent, so they are killed and reaped on the way out."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated(128 + signal.SIGTERM)


def _on_sigterm(handler: Any) -> Any:
    """Install `handler` (None: the default) for SIGTERM and return the one it replaces; only the main
    thread may, so elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, signal.SIG_DFL if handler is None else handler)


def _queue(count: int) -> int:
    """A pipe holding items 0..count-1 as index ranges (as many as half the pipe holds), written
    and closed for writing: the read end, which every worker shares and reads one range at a time
    (a pipe hands each read of 8 bytes a whole range, to one reader). Its end is the end of the work."""
    read_fd, write_fd = os.pipe()
    try:
        step = max(1, math.ceil(count / (_capacity(write_fd) // 2 // 8)))
        records = b"".join(first.to_bytes(4, "little") + min(first + step, count).to_bytes(4, "little")
                           for first in range(0, count, step))
        _write_all(write_fd, records)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return read_fd


def _capacity(fd: int) -> int:
    """How many bytes the pipe holds before a write blocks (one page where the system cannot say)."""
    try:
        import fcntl

        return max(_PAGE, fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ))  # type: ignore[attr-defined]
    except (ImportError, AttributeError, OSError):
        return _PAGE


def _start(items: Sequence[I], work: Callable[[I], R], count: int, procs: list[_Worker]) -> None:
    """Fork `count` workers over one queue of all the items, each added to `procs` as soon as it exists.
    gc.freeze() first: a collection in a worker would otherwise touch (and so copy) every object
    inherited from the parent."""
    for stream in (sys.stdout, sys.stderr):  # a worker must not inherit (and later repeat) buffered output
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    # Ctrl-C and SIGTERM wait until each worker is forked and known (and, in a worker, until its own
    # handlers are set), so none runs unknown to the parent and no worker ever runs the parent's code.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    queue = -1
    gc.freeze()
    try:
        queue = _queue(len(items))
        for _ in range(count):
            read_fd, write_fd = os.pipe()
            _widen(write_fd)
            pid = os.fork()
            if pid == 0:  # the worker: never returns
                _serve(items, work, queue, read_fd, write_fd, [p.fd for p in procs], mask)
            os.close(write_fd)
            procs.append(_Worker(pid, read_fd))
    finally:
        if queue >= 0:
            os.close(queue)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        gc.unfreeze()


def _widen(fd: int) -> None:
    """A pipe that holds many environments' results: with the default 64 KiB a worker stops after
    two or three of them until the parent gets the CPU to read, which on a busy machine is often."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _CHUNK)  # type: ignore[attr-defined]
    except (ImportError, AttributeError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size
        pass


def _serve(items: Sequence[I], work: Callable[[I], R], queue: int, read_fd: int, write_fd: int,
           inherited: list[int], mask: set[signal.Signals]) -> None:
    """A worker's life: the next range of items from the queue until it is empty, each item as a frame
    saying it starts and a frame with its result, then exit without teardown (no atexit handler, no
    buffered stdout of the parent's is ever run or flushed here)."""
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends a worker at once, silently
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # and so does SIGTERM (the parent's handler is not its)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for fd in (read_fd, *inherited):
            os.close(fd)
        while record := os.read(queue, 8):
            for index in range(int.from_bytes(record[:4], "little"), int.from_bytes(record[4:], "little")):
                _send(write_fd, pickle.dumps((index, None, None), pickle.HIGHEST_PROTOCOL))
                try:
                    frame = pickle.dumps((index, True, work(items[index])), pickle.HIGHEST_PROTOCOL)
                except BaseException as exc:  # noqa: BLE001 -- the parent raises it where the serial loop would
                    frame = pickle.dumps((index, False, _portable(exc)), pickle.HIGHEST_PROTOCOL)
                _send(write_fd, frame)
        status = 0
    finally:
        os._exit(status)


def _portable(exc: BaseException) -> BaseException:
    """The exception as it can cross the pipe, with the worker's traceback as a note (shown by --debug)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    exc.__traceback__ = None
    try:
        exc.add_note(f"(raised in an envspec worker process)\n{text}")
        pickle.loads(pickle.dumps(exc, pickle.HIGHEST_PROTOCOL))
        return exc
    except Exception:  # noqa: BLE001 -- an exception that does not pickle crosses as its text
        stand_in = RuntimeError(f"{type(exc).__name__}: {exc}")
        stand_in.add_note(f"(raised in an envspec worker process)\n{text}")
        return stand_in


def _send(fd: int, frame: bytes) -> None:
    """One frame as `_Worker.frames` reads it: its length (8 bytes, little-endian), then the pickle."""
    _write_all(fd, len(frame).to_bytes(8, "little") + frame)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _collect(procs: list[_Worker], results: dict[int, tuple[bool, object]]) -> None:
    """Read every worker's frames until each pipe ends (the worker exited, however it exited)."""
    import selectors

    with selectors.DefaultSelector() as selector:
        for proc in procs:
            selector.register(proc.fd, selectors.EVENT_READ, proc)
        while selector.get_map():
            for key, _ in selector.select():
                proc = key.data
                chunk = os.read(proc.fd, _CHUNK)
                if chunk:
                    proc.buffer += chunk
                    for index, ok, payload in proc.frames():
                        if ok is None:
                            proc.current = index
                        else:
                            results[index] = (ok, payload)
                            proc.current = None
                    continue
                selector.unregister(proc.fd)
                os.close(proc.fd)
                proc.fd = -1


def _kill(proc: _Worker) -> None:
    if not proc.reaped:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except OSError:
            pass


def _reap(proc: _Worker) -> None:
    """Wait for the worker (it has exited or been killed by now), so no zombie is left."""
    if proc.fd >= 0:
        os.close(proc.fd)
        proc.fd = -1
    if proc.reaped:
        return
    while True:
        try:
            _, status = os.waitpid(proc.pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): its status is unknown
            proc.reaped = True
            return
        except KeyboardInterrupt:
            _kill(proc)
            continue
        proc.reaped, proc.status = True, os.waitstatus_to_exitcode(status)
        return


def _death(status: int | None) -> str:
    if status is not None and status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = "unknown"
        return f"killed by signal {-status} ({name})"
    return "ended" if status is None else f"exited with status {status}"
