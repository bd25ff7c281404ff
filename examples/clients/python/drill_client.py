"""An external drill client: a plain redis-py Sentinel application under a failover drill.

The harness starts this program when a drill's workload starts (``drill.clients``), with the
topology described in ``REDIS_HARNESS_*`` environment variables, and stops it with SIGTERM
when the drill ends. It connects the way applications do -- ``redis.sentinel.Sentinel`` and
``master_for`` with redis-py's defaults, no failover handling of its own -- and writes
``SET <prefix>w-<n> w-<n>`` (a fresh key per write) at the suggested rate. Every write is
recorded as one JSON line in ``REDIS_HARNESS_HISTORY`` (CLOCK_MONOTONIC nanoseconds around
the call, outcome ok / fail / unknown), which the harness judges like its own clients:
acknowledged writes missing after the drill are lost, the longest gap between them is the
outage.

Run by hand (a topology from ``redis-harness up``)::

    REDIS_HARNESS_SENTINELS=127.0.0.1:26379 REDIS_HARNESS_MASTER_NAME=mymaster \\
    REDIS_HARNESS_KEY_PREFIX=harness:drill:redis-py: REDIS_HARNESS_HISTORY=/tmp/h.jsonl \\
    python3 examples/clients/python/drill_client.py

Python 3.11, the standard library and ``redis`` (requirements.txt).
"""

import json
import os
import signal
import sys
import time

from redis.exceptions import (
    BusyLoadingError,
    ConnectionError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.sentinel import Sentinel, SentinelManagedConnection

REQUIRED = (
    "REDIS_HARNESS_SENTINELS",
    "REDIS_HARNESS_MASTER_NAME",
    "REDIS_HARNESS_KEY_PREFIX",
    "REDIS_HARNESS_HISTORY",
)

# After SIGTERM the operation in flight may finish for this long (redis-py retries a failed
# command up to 10 times by default); the harness's SIGKILL comes at 5 s.
SHUTDOWN_GRACE_S = 4.0


class _Deadline(BaseException):
    """Raised into an operation still running SHUTDOWN_GRACE_S after SIGTERM."""


class _Sends:
    """What became of the current write's SET, attempt by attempt.

    ``doubt`` is set once an attempt may have reached the server without a definite refusal:
    sent (or possibly sent) and then a timeout or a lost connection. A write that fails
    without ``doubt`` was certainly not applied: every attempt either never got a
    connection or was refused with an error reply (``refused``).
    """

    def __init__(self):
        self.key = None
        self.doubt = False
        self.replied = False
        self.refused = False
        self.awaiting = None  # the connection whose next reply answers the SET
        self.phase = None  # "connect" until the connection is up, then "send"

    def start(self, key):
        self.key = key.encode()
        self.doubt = False
        self.replied = False
        self.refused = False
        self.awaiting = None
        self.phase = None

    def ours(self, args):
        return (
            len(args) >= 2
            and str(args[0]).upper() == "SET"
            and self.key is not None
            and (args[1].encode() if isinstance(args[1], str) else args[1]) == self.key
        )


SENDS = _Sends()


def _refused(exc):
    """True for an error reply: ResponseError (READONLY among them), LOADING (which redis-py
    raises as a ConnectionError), or the ConnectionError redis-py's Sentinel connection raises
    in place of a ReadOnlyError ("The previous master is now a slave")."""
    if isinstance(exc, (ResponseError, BusyLoadingError)):
        return True
    return isinstance(exc, ConnectionError) and isinstance(exc.__context__, ReadOnlyError)


class ObservedConnection(SentinelManagedConnection):
    """redis-py's own Sentinel connection, unchanged, with the SET's fate noted in SENDS.

    It only observes: whether the connection was still being made when an attempt failed
    (then nothing was sent), and whether the reply was read. redis-py retries a failed
    command on its own, so one write can be several attempts.
    """

    def send_command(self, *args, **kwargs):
        if not SENDS.ours(args):
            return super().send_command(*args, **kwargs)
        # Without a socket, redis-py connects first (connect / connect_check_health below
        # move the phase on once the connection is up); with one, the bytes go out at once.
        SENDS.phase = "send" if self._sock else "connect"
        try:
            super().send_command(*args, **kwargs)
        except BaseException:
            if SENDS.phase == "send":
                SENDS.doubt = True
            raise
        finally:
            SENDS.phase = None
        SENDS.awaiting = self

    def connect(self, *args, **kwargs):
        result = super().connect(*args, **kwargs)
        if SENDS.phase == "connect":
            SENDS.phase = "send"
        return result

    def connect_check_health(self, *args, **kwargs):
        # redis-py >= 6 reconnects through this one (5.x through connect()).
        result = super().connect_check_health(*args, **kwargs)
        if SENDS.phase == "connect":
            SENDS.phase = "send"
        return result

    def read_response(self, *args, **kwargs):
        if SENDS.awaiting is not self:
            return super().read_response(*args, **kwargs)
        SENDS.awaiting = None
        try:
            response = super().read_response(*args, **kwargs)
        except BaseException as exc:
            if _refused(exc):
                SENDS.refused = True
            else:
                SENDS.doubt = True
            raise
        SENDS.replied = True
        return response


def env_config():
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        sys.stderr.write(
            f"drill_client.py: missing environment variable(s): {', '.join(missing)}\n"
            "It is meant to be started by redis-harness (drill.clients); see "
            "examples/clients/README.md.\n"
        )
        sys.exit(2)
    sentinels = []
    for item in os.environ["REDIS_HARNESS_SENTINELS"].split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            sys.stderr.write(
                f"drill_client.py: REDIS_HARNESS_SENTINELS: not host:port: {item!r}\n"
            )
            sys.exit(2)
        sentinels.append((host.strip("[]"), int(port)))
    try:
        rate = float(os.environ.get("REDIS_HARNESS_WRITE_RATE") or 100)
        timeout_ms = float(os.environ.get("REDIS_HARNESS_OP_TIMEOUT_MS") or 500)
    except ValueError as exc:
        sys.stderr.write(f"drill_client.py: REDIS_HARNESS_WRITE_RATE / _OP_TIMEOUT_MS: {exc}\n")
        sys.exit(2)
    if rate <= 0 or timeout_ms <= 0:
        sys.stderr.write("drill_client.py: write rate and op timeout must be positive\n")
        sys.exit(2)
    return {
        "sentinels": sentinels,
        "master_name": os.environ["REDIS_HARNESS_MASTER_NAME"],
        "password": os.environ.get("REDIS_HARNESS_PASSWORD") or None,
        "sentinel_password": os.environ.get("REDIS_HARNESS_SENTINEL_PASSWORD") or None,
        "prefix": os.environ["REDIS_HARNESS_KEY_PREFIX"],
        "history": os.environ["REDIS_HARNESS_HISTORY"],
        "interval_s": 1.0 / rate,
        "timeout_s": timeout_ms / 1000.0,
    }


def outcome_of(exc):
    """ok / fail / unknown for a write that raised ``exc`` (see _Sends)."""
    if isinstance(exc, RedisError) and not SENDS.doubt and not SENDS.replied:
        return "fail"
    return "unknown"


def main():
    stop = {"requested": False, "in_op": False}

    def on_term(_signum, _frame):
        if not stop["requested"]:
            stop["requested"] = True
            signal.setitimer(signal.ITIMER_REAL, SHUTDOWN_GRACE_S)

    def on_alarm(_signum, _frame):
        if stop["in_op"]:
            raise _Deadline(f"still running {SHUTDOWN_GRACE_S:g} s after SIGTERM")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGALRM, on_alarm)

    cfg = env_config()
    sentinel_kwargs = {"socket_timeout": cfg["timeout_s"]}
    if cfg["sentinel_password"]:
        sentinel_kwargs["password"] = cfg["sentinel_password"]
    sentinel = Sentinel(
        cfg["sentinels"],
        socket_timeout=cfg["timeout_s"],
        sentinel_kwargs=sentinel_kwargs,
    )
    master = sentinel.master_for(
        cfg["master_name"],
        socket_timeout=cfg["timeout_s"],
        password=cfg["password"],
        connection_class=ObservedConnection,
    )

    n = 0
    next_at = time.monotonic()
    with open(cfg["history"], "a", encoding="utf-8") as history:
        while not stop["requested"]:
            now = time.monotonic()
            if now < next_at:
                time.sleep(min(next_at - now, 0.05))
                continue
            # A late write moves the schedule on: no catching up in a burst after a stall.
            next_at = max(next_at, now) + cfg["interval_s"]

            n += 1
            key = f"{cfg['prefix']}w-{n}"
            value = f"w-{n}"
            error = None
            SENDS.start(key)
            invoke_ns = time.monotonic_ns()
            try:
                # Only here may the shutdown deadline interrupt (on_alarm checks in_op).
                stop["in_op"] = True
                try:
                    master.set(key, value)
                finally:
                    stop["in_op"] = False
                outcome = "ok"
            except _Deadline as exc:
                outcome, error = "unknown", f"interrupted: {exc}"
            except Exception as exc:  # every failure is recorded, none ends the loop
                outcome = outcome_of(exc)
                error = f"{type(exc).__name__}: {exc}"
                if outcome == "fail" and not SENDS.refused:
                    error = f"not sent: {error}"
            complete_ns = time.monotonic_ns()

            line = {
                "op": "write",
                "key": key,
                "value": value,
                "invoke_ns": invoke_ns,
                "complete_ns": complete_ns,
                "outcome": outcome,
            }
            if error is not None:
                line["error"] = error
            history.write(json.dumps(line, separators=(",", ":")) + "\n")
            history.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
