"""cxhub's embedded broker (cxhub/broker.py) through kombu's API: a message is claimed, not
deleted, when taken; ack deletes it; requeue, close and a dead owner put it back."""

import multiprocessing
import os
import signal
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Producer, Queue

from cxhub import broker
from tests.integration.dispatch_harness import wait_until

FORK = multiprocessing.get_context("fork")
TASKS = Queue("tasks", Exchange("tasks", type="direct"), routing_key="tasks")
linux_only = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="process start times come from Linux's /proc"
)


def connect(root: Path, **options) -> Connection:
    return Connection(
        transport="cxhub.broker:Transport",
        transport_options={"data_folder": str(root), "recovery_interval": 0.05, **options},
    )


@pytest.fixture
def root(tmp_path):
    return tmp_path / "broker"


@pytest.fixture
def conn(root):
    with connect(root) as connection:
        TASKS(connection.default_channel).declare()
        yield connection


def publish(connection, body, queue=TASKS):
    Producer(connection.default_channel, serializer="json").publish(
        body, exchange=queue.exchange, routing_key=queue.routing_key
    )


def take(connection, queue=TASKS, no_ack=False):
    return queue(connection.default_channel).get(no_ack=no_ack, accept=["json"])


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def ready(connection, queue=TASKS) -> int:
    return queue(connection.default_channel).queue_declare(passive=True).message_count


def test_a_taken_message_is_held_in_flight_and_ack_deletes_it(conn, root):
    publish(conn, {"n": 1})

    message = take(conn)

    assert message.payload == {"n": 1}
    assert ready(conn) == 0
    assert len(files(root / "inflight")) == 1
    with connect(root) as other:
        assert take(other) is None  # nobody else gets it
    message.ack()
    assert files(root / "inflight") == []
    assert files(root / "queue") == []


def test_a_requeued_message_goes_back_ahead_of_newer_ones(conn, root):
    publish(conn, {"n": 1})
    publish(conn, {"n": 2})

    take(conn).requeue()

    assert [take(conn).payload, take(conn).payload] == [{"n": 1}, {"n": 2}]


def test_a_rejected_message_is_dropped(conn, root):
    publish(conn, {"n": 1})

    take(conn).reject()

    assert take(conn) is None
    assert files(root / "queue") + files(root / "inflight") == []


def test_a_message_taken_without_ack_is_deleted_at_once(conn, root):
    publish(conn, {"n": 1})

    assert take(conn, no_ack=True).payload == {"n": 1}

    assert files(root / "queue") + files(root / "inflight") == []


def test_closing_a_connection_puts_back_what_it_held(root):
    with connect(root) as first:
        TASKS(first.default_channel).declare()
        publish(first, {"n": 1})
        assert take(first) is not None

    with connect(root) as second:
        assert take(second).payload == {"n": 1}
    assert list((root / "inflight").iterdir()) == []


def _hold_one(root, taken, release):
    connection = connect(root)
    taken.put(take(connection).payload)
    release.wait(60)  # until the test kills this process (then never set: it would hang)
    os._exit(0)  # gone without acking or closing: no clean-up of kombu's runs


def _holder(root):
    taken, release = FORK.Queue(), FORK.Event()
    holder = FORK.Process(target=_hold_one, args=(root, taken, release))
    holder.start()
    return holder, taken, release


def test_a_message_held_by_a_live_process_stays_with_it_and_comes_back_when_it_dies(conn, root):
    # Given another process holding the only message
    publish(conn, {"n": 1})
    holder, taken, release = _holder(root)
    try:
        assert taken.get(timeout=30) == {"n": 1}

        # While it lives, nobody else gets the message, however often they look
        assert conn.default_channel.store.recover() == 0
        assert take(conn) is None

        # When it is killed, the next look puts the message back
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(timeout=30)
        message = wait_until(lambda: take(conn), timeout=10, what="the message to come back")
    finally:
        holder.kill()
        holder.join(timeout=30)
    assert message.payload == {"n": 1}
    message.ack()
    assert files(root / "inflight") == []


def test_a_message_held_by_a_process_that_exited_is_delivered_again(conn, root):
    publish(conn, {"n": 1})
    holder, taken, release = _holder(root)
    assert taken.get(timeout=30) == {"n": 1}
    release.set()  # it lets go and exits
    holder.join(timeout=30)
    assert len(files(root / "inflight")) == 1  # still held in the dead process's name

    message = wait_until(lambda: take(conn), timeout=10, what="the message to come back")

    assert message.payload == {"n": 1}


@linux_only
def test_an_owner_whose_pid_was_reused_counts_as_gone(conn, root):
    # Given a message held under the pid of a live process, but not the one that started then
    publish(conn, {"n": 1})
    held = take(conn)
    stale = root / "inflight" / f"{os.getppid()}-1-0123456789ab"
    stale.mkdir()
    for path in (root / "inflight").glob("*/*.msg"):
        path.rename(stale / path.name)
    conn.default_channel.store._claimed.clear()

    # When anyone looks, it goes back
    assert conn.default_channel.store.recover() == 1
    assert take(conn).payload == held.payload


@linux_only
def test_liveness_tells_this_process_from_a_dead_or_reborn_one():
    me = broker._this_process()
    pid, start = me.split("-")

    assert broker._is_alive(me)
    assert not broker._is_alive(f"{pid}-{int(start) + 1}")
    assert not broker._is_alive("4194999-1")  # above any pid_max


def test_a_connection_dropped_without_closing_leaves_its_messages_to_others(conn, root):
    # Given a connection in this process that took a message and was dropped, not closed
    publish(conn, {"n": 1})
    dropped = connect(root)
    assert take(dropped).payload == {"n": 1}
    owner = dropped.default_channel.store._owner
    broker._LIVE_OWNERS.pop(owner)

    # Then another connection of the same process takes it back
    assert wait_until(lambda: take(conn), timeout=10, what="the message").payload == {"n": 1}
    dropped.release()


def test_a_file_that_is_not_a_message_is_moved_aside_and_the_next_delivered(conn, root):
    # Given an empty file, as kombu's transport leaves when a write is cut short, ahead of a
    # real message
    (root / "queue" / "00000000000000000001_dead.tasks.msg").write_bytes(b"")
    publish(conn, {"n": 1})

    message = take(conn)

    assert message.payload == {"n": 1}
    assert files(root / "unreadable") == ["00000000000000000001_dead.tasks.msg"]


def test_an_unfinished_write_of_a_dead_writer_is_removed_and_never_delivered(conn, root):
    (root / "tmp" / "4194999-1_00000000000000000001_x.tasks.msg").write_bytes(b'{"body"')

    conn.default_channel.store.recover()

    assert files(root / "tmp") == []
    assert take(conn) is None


def test_size_counts_ready_messages_and_purge_removes_them(conn, root):
    for n in range(3):
        publish(conn, {"n": n})
    held = take(conn)

    assert ready(conn) == 2
    assert TASKS(conn.default_channel).purge() == 2
    assert ready(conn) == 0
    held.ack()
    assert files(root / "queue") + files(root / "inflight") == []


def test_a_broadcast_reaches_every_bound_queue(conn):
    everyone = Exchange("everyone", type="fanout")
    queues = [Queue(f"listener-{n}", everyone) for n in range(2)]
    for queue in queues:
        queue(conn.default_channel).declare()

    publish(conn, {"hello": "all"}, queue=Queue("any", everyone))

    assert [take(conn, queue, no_ack=True).payload for queue in queues] == [{"hello": "all"}] * 2


def test_an_exchange_table_still_being_created_reads_as_no_bindings(conn, root):
    # kombu's transport creates the file empty, then writes it: a reader must cope
    (root / "control" / "fresh.exchange").write_bytes(b"")

    assert conn.default_channel.get_table("fresh") == []
    Queue("q", Exchange("fresh"), routing_key="q")(conn.default_channel).declare()
    assert [row.queue for row in conn.default_channel.get_table("fresh")] == ["q"]


def test_a_queue_name_that_leaves_the_folder_is_refused(conn):
    with pytest.raises(Exception, match="Invalid queue name"):
        conn.default_channel._put("../escape", {"properties": {}})


def test_a_folder_that_cannot_be_written_makes_the_connection_fail(tmp_path):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")

    with pytest.raises(Exception), connect(blocked / "broker") as connection:
        connection.ensure_connection(max_retries=1)


def test_a_consumer_whose_folder_was_taken_away_makes_it_again(conn, root):
    # Given a consumer whose in-flight folder another process removed
    publish(conn, {"n": 1})
    take(conn).ack()
    publish(conn, {"n": 2})
    for folder in (root / "inflight").iterdir():
        folder.rmdir()

    # Then it still gets the message, at the latest on its next look
    message = wait_until(lambda: take(conn), timeout=5, what="the message", interval=0.01)
    assert message.payload == {"n": 2}


def test_a_released_redis_transport_reads_as_a_lost_connection_not_a_crash():
    """cxhub/celery.py's work-around: closing a consumer's channel after its transport was
    released must raise what kombu ignores while closing (a connection error), not the
    AttributeError that Celery takes for an unrecoverable error."""
    from types import SimpleNamespace

    from kombu.transport import redis as kombu_redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    import cxhub.celery  # noqa: F401 (installs it)

    released = SimpleNamespace(connection=SimpleNamespace(client=None))
    with pytest.raises(RedisConnectionError):
        kombu_redis.Channel._connparams(released)
    assert RedisConnectionError in kombu_redis.Transport.connection_errors
    assert kombu_redis.Channel._connparams._cxhub  # installed once, whatever imports it
