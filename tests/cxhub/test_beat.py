"""The beat's leader lock (cxhub/beat.py), in-process: one holder at a time, freed when the
holder lets go or its session ends; a standby scheduler sends nothing and leaves the schedule
file alone. Real beat processes: tests/integration/test_beat_leader.py."""

import pytest
from django.db import connection

from cxhub.beat import FileLeaderLock, LeaderScheduler, PostgresLeaderLock, leader_lock
from cxhub.celery import app

from ..dbroles import as_owner


def test_the_file_lock_has_one_holder_at_a_time(tmp_path):
    # Given a lock taken
    first, second = FileLeaderLock(tmp_path / "beat.lock"), FileLeaderLock(tmp_path / "beat.lock")
    assert first.acquire() and first.holds()

    # Then nobody else gets it until it is released
    assert not second.acquire() and not second.holds()
    first.release()
    assert not first.holds()
    assert second.acquire()
    second.release()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_advisory_lock_has_one_holder_and_comes_free_when_its_session_ends():
    assert isinstance(leader_lock(), PostgresLeaderLock)
    first, second = PostgresLeaderLock(), PostgresLeaderLock()
    try:
        # Given a lock held on a session of its own
        assert first.acquire() and first.holds()
        assert not second.acquire()

        # When the holder's session is ended (a leader whose connection died)
        with as_owner(), connection.cursor() as cursor:
            pid = first._connection.connection.info.backend_pid
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])

        # Then the holder knows it lost the lock, and another takes it
        assert not first.holds()
        assert second.acquire() and second.holds()
        assert not first.acquire()
    finally:
        first.release()
        second.release()


def test_a_standby_scheduler_sends_nothing_and_leaves_the_schedule_file_alone(
    tmp_path, settings, monkeypatch
):
    # Given the lock held by someone else
    lock_file = tmp_path / "beat.lock"
    monkeypatch.setattr("cxhub.beat.leader_lock", lambda: FileLeaderLock(lock_file))
    holder = FileLeaderLock(lock_file)
    assert holder.acquire()

    # When a scheduler starts and ticks
    app.finalize(auto=True)  # as a beat process does: the periodic schedule is declared
    standby = LeaderScheduler(app=app, schedule_filename=str(tmp_path / "schedule"))
    sent = []
    monkeypatch.setattr(standby, "apply_entry", lambda entry, producer=None: sent.append(entry))
    try:
        # Then it only waits for the lock
        assert standby.tick() == settings.CXHUB_BEAT_LOCK_SECONDS
        assert not standby.leading and sent == [] and not list(tmp_path.glob("schedule*"))

        # When the holder lets go, it leads: it opens the schedule, and checks the lock again
        # before its next send at the latest
        holder.release()
        assert 0 <= standby.tick() <= settings.CXHUB_BEAT_LOCK_SECONDS
        assert standby.leading and list(tmp_path.glob("schedule*"))
        assert "heartbeat" in standby.schedule
    finally:
        standby.close()

    # And closing it (a beat stopping) frees the lock
    assert not standby.leading and holder.acquire()
    holder.release()
