"""The embedded broker: a kombu transport on folders of one machine that never hands out a
half-written message and never loses one a consumer held when it died.

kombu's own filesystem transport creates a message file under its final name and only then
writes it, so a consumer can read it half-written; and it deletes a message the moment it is
fetched, so a worker killed while holding one (acks_late) loses it. Here every step is a rename,
which is atomic on one filesystem:

    tmp/<writer>_<name>      being written (fsynced, then renamed into queue/)
    queue/<name>             ready: `<time ns>_<uuid>.<queue>.msg`, oldest name first
    inflight/<owner>/<name>  claimed by one connection (`<pid>-<start time>-<random>`);
                             deleted on ack, renamed back into queue/ on reject, on close,
                             and by any consumer once the owning process is gone
    unreadable/<name>        a file that is not a message (e.g. left by kombu's transport)
    control/<exchange>.exchange   bindings, as kombu's transport keeps them (for fanout)

Delivery is at least once: a message whose consumer died is delivered again.
"""

import contextlib
import logging
import os
import threading
import time
import uuid
import weakref
from pathlib import Path
from queue import Empty

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

# Stores of this process that may still hold claims, by owner name: an owner folder named for
# this process but missing here was left by a connection that is gone.
_LIVE_OWNERS: "weakref.WeakValueDictionary[str, Store]" = weakref.WeakValueDictionary()
_STATES: dict[Path, virtual.BrokerState] = {}


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of a process, from Linux's /proc; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    return fields[0].decode(), fields[19].decode()


_this: tuple[int, str] = (0, "")


def _this_process() -> str:
    """`<pid>-<start time>`: unlike a pid alone, never names a later process given the same
    pid (a restarted container's worker gets the pid of the one that died)."""
    global _this
    pid = os.getpid()
    if _this[0] != pid:
        stat = _proc_stat(pid)
        _this = (pid, f"{pid}-{stat[1] if stat else 0}")
    return _this[1]


def _is_alive(process: str) -> bool:
    """Whether the process named `<pid>-<start time>` still runs (a zombie does not)."""
    pid_text, _, start = process.partition("-")
    try:
        pid = int(pid_text)
    except ValueError:
        return True  # not a name we made: leave it alone
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc: the pid is all there is to go on
    state, started = stat
    return state not in ("Z", "X") and start in ("0", started)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_queue_name(queue: str) -> None:
    # The name becomes part of a file name: it must not leave the folder.
    if not queue or "/" in queue or "\0" in queue or (os.altsep and os.altsep in queue):
        raise ChannelError(f"Invalid queue name: {queue!r}")


class Store:
    """The folders of one broker, as one connection (transport) of one process uses them."""

    def __init__(self, root: Path, *, durable: bool = True, recovery_interval: float = 1.0):
        self.root = root
        self.queue = root / "queue"
        self.inflight = root / "inflight"
        self.tmp = root / "tmp"
        self.unreadable = root / "unreadable"
        self.control = root / "control"
        self.durable = durable
        self.recovery_interval = recovery_interval
        self._lock = threading.Lock()
        self._pid = 0
        self._owner = ""
        self._claimed: dict[str, Path] = {}  # delivery tag -> its file under inflight/<owner>
        self._next_recovery = 0.0

    def prepare(self) -> None:
        """Make the folders; fail (and /healthz says the broker is down) if they cannot be."""
        for folder in (self.queue, self.inflight, self.tmp, self.unreadable, self.control):
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ChannelError(f"Broker folder {folder} is not writable")

    # Writing ------------------------------------------------------------------------------
    def put(self, queue: str, payload: dict) -> None:
        _check_queue_name(queue)
        name = f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}.msg"
        tmp = self.tmp / f"{_this_process()}_{name}"
        try:
            with open(tmp, "xb") as out:
                out.write(str_to_bytes(dumps(payload)))
                out.flush()
                if self.durable:
                    os.fsync(out.fileno())
            os.rename(tmp, self.queue / name)
            if self.durable:
                _fsync_folder(self.queue)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ChannelError(f"Cannot add a message to {self.queue}: {exc}") from exc

    # Taking and settling ------------------------------------------------------------------
    def _owner_folder(self) -> Path:
        # A forked child starts with no claims of its own; its parent's stay the parent's.
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._owner = f"{_this_process()}-{uuid.uuid4().hex[:12]}"
                    self._claimed = {}
                    _LIVE_OWNERS[self._owner] = self  # before the folder exists: never "gone"
                    (self.inflight / self._owner).mkdir()
                    self._pid = os.getpid()
        return self.inflight / self._owner

    def take(self, queue: str, *, keep: bool) -> dict:
        """The oldest ready message of `queue`, claimed by this connection until it is settled
        (or, when not `keep`, deleted at once: a consumer with no_ack). Raises Empty."""
        self.maybe_recover()
        wanted = f"{queue}.msg"
        names = sorted(n for n in os.listdir(self.queue) if n.partition(".")[2] == wanted)
        if not names:
            raise Empty()
        owned = self._owner_folder()
        for name in names:
            claimed = owned / name
            try:
                os.rename(self.queue / name, claimed)
            except FileNotFoundError:
                if owned.is_dir():
                    continue  # another consumer took it first
                # Our folder was taken away (a process that could not see ours took it for
                # dead): make it again; the message is still there for the next look.
                owned.mkdir(parents=True, exist_ok=True)
                continue
            payload = self._read(claimed)
            if payload is None:
                continue
            if keep:
                self._claimed[payload["properties"]["delivery_tag"]] = claimed
            else:
                claimed.unlink()
            return payload
        raise Empty()

    def _read(self, claimed: Path) -> dict | None:
        try:
            payload = loads(bytes_to_str(claimed.read_bytes()))
            if "delivery_tag" not in payload["properties"]:
                raise KeyError("delivery_tag")
        except (ValueError, TypeError, KeyError) as exc:
            logger.error(
                "Broker: %s is not a message (%s): moved to %s", claimed.name, exc, self.unreadable
            )
            with contextlib.suppress(OSError):
                os.rename(claimed, self.unreadable / claimed.name)
            return None
        return payload

    def ack(self, delivery_tag: str) -> None:
        claimed = self._claimed.pop(delivery_tag, None)
        if claimed is not None and self._pid == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                claimed.unlink()

    def requeue(self, delivery_tag: str) -> None:
        """Back into the queue under its own name, so it keeps its place (oldest first)."""
        claimed = self._claimed.pop(delivery_tag, None)
        if claimed is not None and self._pid == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                os.rename(claimed, self.queue / claimed.name)

    def release(self) -> None:
        """The connection closes: whatever it still holds goes back to the queue."""
        if self._pid != os.getpid() or not self._owner:
            return
        self._claimed.clear()
        self._put_back(self.inflight / self._owner)
        _LIVE_OWNERS.pop(self._owner, None)
        self._pid = 0

    # Recovery -----------------------------------------------------------------------------
    def maybe_recover(self) -> None:
        now = time.monotonic()
        if now >= self._next_recovery:
            self._next_recovery = now + self.recovery_interval
            self.recover()

    def recover(self) -> int:
        """Put back the messages claimed by connections that are gone (their process died, or
        it is this process and the connection was dropped), and drop unfinished writes of dead
        writers. Returns how many messages went back."""
        restored = 0
        me = str(os.getpid())
        for owner in os.listdir(self.inflight):
            process = owner.rpartition("-")[0]
            if process.partition("-")[0] == me:
                gone = owner not in _LIVE_OWNERS
            else:
                gone = not _is_alive(process)
            if gone:
                restored += self._put_back(self.inflight / owner)
        for name in os.listdir(self.tmp):
            if not _is_alive(name.partition("_")[0]):
                with contextlib.suppress(OSError):
                    (self.tmp / name).unlink()
        return restored

    def _put_back(self, folder: Path) -> int:
        count = 0
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(folder):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(folder / name, self.queue / name)
                    count += 1
        with contextlib.suppress(OSError):
            folder.rmdir()
        if count:
            logger.warning("Broker: %d message(s) held by %s put back", count, folder.name)
        return count

    # Counting -----------------------------------------------------------------------------
    def _ready(self, queue: str) -> list[str]:
        wanted = f"{queue}.msg"
        return [n for n in os.listdir(self.queue) if n.partition(".")[2] == wanted]

    def size(self, queue: str) -> int:
        return len(self._ready(queue))

    def purge(self, queue: str) -> int:
        count = 0
        for name in self._ready(queue):
            with contextlib.suppress(FileNotFoundError):
                (self.queue / name).unlink()
                count += 1
        return count


def _rows(raw: bytes) -> list:
    return [filesystem.exchange_queue_t(*row) for row in loads(bytes_to_str(raw))] if raw else []


class QoS(virtual.QoS):
    """Acks settle the claimed file: deleted on ack, back in the queue on requeue."""

    def ack(self, delivery_tag):
        self.channel.store.ack(delivery_tag)
        super().ack(delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        if requeue:
            self.channel.store.requeue(delivery_tag)
        else:
            self.channel.store.ack(delivery_tag)
        super().ack(delivery_tag)  # off the delivered list; the file is settled above


class Channel(filesystem.Channel):
    QoS = QoS

    def __init__(self, connection, **kwargs):
        super().__init__(connection, **kwargs)
        # Kept apart from self.connection, which kombu clears when the channel closes.
        self.store: Store = connection.store
        self._no_ack_queues: set[str] = set()

    @property
    def control_folder(self):
        return self.store.control

    def _put(self, queue, payload, **kwargs):
        self.store.put(queue, payload)

    def _get(self, queue):
        return self.store.take(queue, keep=queue not in self._no_ack_queues)

    def basic_get(self, queue, no_ack=False, **kwargs):
        try:
            payload = self.store.take(queue, keep=not no_ack)
        except Empty:
            return None
        message = self.Message(payload, channel=self)
        if not no_ack:
            self.qos.append(message, message.delivery_tag)
        return message

    def basic_consume(self, queue, no_ack, callback, consumer_tag, **kwargs):
        # Consumers with no_ack (Celery's broadcast/pidbox) never settle: take and delete.
        if no_ack:
            self._no_ack_queues.add(queue)
        return super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)

    def basic_cancel(self, consumer_tag):
        queue = self._tag_to_queue.get(consumer_tag)
        super().basic_cancel(consumer_tag)
        if queue not in self._tag_to_queue.values():
            self._no_ack_queues.discard(queue)

    def _restore(self, message):
        # Unacked at close or on recover: the claimed file itself goes back (no copy).
        self.store.requeue(message.delivery_tag)

    def drain_events(self, timeout=None, callback=None):
        # A worker busy up to its prefetch limit does not take messages, but still puts back
        # those of dead consumers for a worker that can.
        if self._consumers:
            self.store.maybe_recover()
        return super().drain_events(timeout=timeout, callback=callback)

    def _purge(self, queue):
        return self.store.purge(queue)

    def _size(self, queue):
        return self.store.size(queue)

    # Bindings (kombu keeps them in control/<exchange>.exchange, read on every publish). Its
    # transport creates the file empty and then writes it, so a reader could find it empty;
    # here an empty file is "no bindings yet" and every change happens under the lock.
    def get_table(self, exchange):
        path = self._exchange_file(exchange)
        try:
            with open(path, "rb") as table:
                filesystem.lock(table, filesystem.LOCK_SH)
                try:
                    raw = table.read()
                finally:
                    filesystem.unlock(table)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot read {path}") from exc
        return _rows(raw)

    def _change_table(self, exchange, change) -> None:
        path = self._exchange_file(exchange)
        try:
            with open(path, "a+b") as table:
                filesystem.lock(table, filesystem.LOCK_EX)
                try:
                    table.seek(0)
                    raw = table.read()
                    rows = _rows(raw)
                    changed = change(rows)
                    if changed != rows or not raw:
                        table.seek(0)
                        table.truncate()
                        table.write(str_to_bytes(dumps(changed)))
                        table.flush()
                finally:
                    filesystem.unlock(table)
        except OSError as exc:
            raise ChannelError(f"Cannot change {path}") from exc

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        row = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._change_table(exchange, lambda rows: rows if row in rows else [row, *rows])

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        self._purge(queue)
        row = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._change_table(exchange, lambda rows: [r for r in rows if r != row])


class Transport(filesystem.Transport):
    """Options: `data_folder` (required: the broker's root folder), `fsync` (default True:
    a message acknowledged to its producer survives a power cut), `recovery_interval` (seconds
    between looks for dead consumers' messages, default 1), and kombu's `polling_interval`."""

    Channel = Channel
    driver_type = "filesystem"
    driver_name = "cxhub-filesystem"

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        options = client.transport_options
        if not options.get("data_folder"):
            raise ChannelError("cxhub.broker needs the transport option data_folder")
        root = Path(options["data_folder"]).absolute()
        self.store = Store(
            root,
            durable=bool(options.get("fsync", True)),
            recovery_interval=float(options.get("recovery_interval", 1.0)),
        )
        # kombu remembers declared bindings per process and skips writing them again: one
        # memory per broker folder, or a second folder would never get its control files.
        self.state = _STATES.setdefault(root, virtual.BrokerState())

    def establish_connection(self):
        self.store.prepare()
        return super().establish_connection()

    def close_connection(self, connection):
        super().close_connection(connection)
        self.store.release()
