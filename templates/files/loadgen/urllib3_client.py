# The "urllib3" client of debship's load generator (internal/loadgen):
# what a Python program using urllib3 with its defaults sees of a deploy.
# Run by the Go side as `/usr/bin/python3 -I -c <this file> <options as JSON>`
# with Debian's python3-urllib3 (1.26 on Debian 12, 2.x on Debian 13; this
# file works with both). It prints one JSON line per request on stdout and
# stops starting requests when its stdin closes (the Go side's Stop), then
# waits for the requests in flight.
#
# The options: url, rate (requests/s), timeout (s), duration (s),
# max_requests, max_in_flight, pool_size.
import errno
import http.client
import json
import logging
import os
import signal
import socket
import sys
import threading
import time

import urllib3
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool

opts = json.loads(sys.argv[1])

# The Go side stops this script through stdin; an interactive Ctrl-C that
# reaches the whole process group must not lose the requests in flight.
signal.signal(signal.SIGINT, signal.SIG_IGN)
# urllib3 logs a warning per retry and per connection it discards from a
# full pool; the samples are the report, a warning per request is noise.
logging.getLogger("urllib3").setLevel(logging.ERROR)

local = threading.local()


class Conn(HTTPConnection):
    # A request's first attempt tells whether it went out on a connection
    # an earlier request opened: urllib3 connects lazily, so a connection
    # without a socket here is a new one (or one urllib3 found closed by
    # the server and dropped before sending on it).
    def request(self, *args, **kwargs):
        if local.reused is None:
            local.reused = self.sock is not None
        return super().request(*args, **kwargs)


class Pool(HTTPConnectionPool):
    ConnectionCls = Conn


# urllib3's defaults, as `urllib3.PoolManager()` or requests' session give
# them, but for maxsize: block=False (more than pool_size requests at once
# open extra connections, which are closed after their answer instead of
# waiting for a pooled one) and Retry.DEFAULT, i.e. Retry(total=3): an
# idempotent request (this GET) is sent again after a connection error, a
# connection closed or reset before the answer, or a read timeout, at most
# 3 times, with no backoff.
manager = urllib3.PoolManager(maxsize=opts["pool_size"])
manager.pool_classes_by_scheme = dict(manager.pool_classes_by_scheme, http=Pool)
# Per attempt: urllib3 has no deadline over its retries, so a request that
# hangs each time is given up after 4 timeouts.
timeout = urllib3.Timeout(total=opts["timeout"])

out_lock = threading.Lock()
stop = threading.Event()


def emit(rec):
    line = json.dumps(rec) + "\n"
    with out_lock:
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            stop.set()


def cause(exc):
    """The error kinds of loadgen's report, found along the chain urllib3
    wraps around the socket's error."""
    seen = set()
    queue = [exc]
    while queue:
        e = queue.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        # NewConnectionError is a ConnectTimeoutError by class, for
        # compatibility, whatever the socket said: look at its cause.
        if isinstance(e, (urllib3.exceptions.TimeoutError, socket.timeout, TimeoutError)) and not isinstance(
            e, urllib3.exceptions.NewConnectionError
        ):
            return "timeout"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        # Before ConnectionResetError, its base class.
        if isinstance(e, http.client.RemoteDisconnected):
            return "closed by the server (EOF)"
        if isinstance(e, ConnectionResetError):
            return "connection reset"
        if isinstance(e, OSError) and e.errno == errno.EHOSTUNREACH:
            return "no route to host"
        queue.append(getattr(e, "reason", None))
        queue.extend(a for a in e.args if isinstance(a, BaseException))
        queue.append(e.__cause__)
        queue.append(e.__context__)
    return type(exc).__name__


def one(start_ns):
    local.reused = None
    rec = {"start_ns": start_ns}
    t0 = time.perf_counter_ns()
    try:
        r = manager.request("GET", opts["url"], timeout=timeout)
        rec["status"] = r.status
        try:
            body = json.loads(r.data)
            if isinstance(body, dict):
                rec["host"] = str(body.get("host", ""))
                rec["version"] = str(body.get("version", ""))
        except ValueError:
            pass
    except Exception as e:
        rec["err"] = "%s: %s" % (cause(e), str(e)[:300])
    rec["latency_ns"] = time.perf_counter_ns() - t0
    rec["reused"] = bool(local.reused)
    emit(rec)


def watch_stdin():
    # os.read, not sys.stdin: a daemon thread blocked in a buffered
    # read aborts the interpreter's shutdown.
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    stop.set()


threading.Thread(target=watch_stdin, daemon=True).start()

in_flight = threading.BoundedSemaphore(opts["max_in_flight"])
running = set()
running_lock = threading.Lock()


def run(start_ns):
    try:
        one(start_ns)
    finally:
        in_flight.release()
        with running_lock:
            running.discard(threading.current_thread())


# Open loop: a request starts every 1/rate s whether or not the earlier
# ones have answered.
interval = 1.0 / opts["rate"]
deadline = time.monotonic() + opts["duration"]
due = time.monotonic()
for _ in range(opts["max_requests"]):
    wait = due - time.monotonic()
    if wait > 0 and stop.wait(wait):
        break
    if stop.is_set() or time.monotonic() >= deadline:
        break
    due += interval
    start_ns = time.time_ns()
    if not in_flight.acquire(blocking=False):
        # Too many requests hang: count this one as failed, do not queue it.
        emit({"start_ns": start_ns, "err": "too many requests in flight"})
        continue
    t = threading.Thread(target=run, args=(start_ns,))
    with running_lock:
        running.add(t)
    t.start()

with running_lock:
    left = list(running)
for t in left:
    t.join()
