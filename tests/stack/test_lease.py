"""The lease's pure state machine (stack/lease.py): who may act, from what the lock session
says and the clock."""

from __future__ import annotations

from stack.lease import (
    BecomeActive,
    CheckFailed,
    CheckOk,
    Lease,
    LeaseState,
    LockAcquired,
    LockLost,
    StopActing,
    Tick,
)

LEASE = 2.0
MARGIN = 0.5


def active_lease(at: float = 0.0) -> Lease:
    lease = Lease(LEASE, MARGIN)
    lease.handle(LockAcquired(at))
    lease.handle(CheckOk(at + 1.0))
    assert lease.handle(Tick(at + LEASE + MARGIN)) == [BecomeActive()]
    return lease


def test_a_standby_without_the_lock_never_acts():
    lease = Lease(LEASE, MARGIN)
    for at in (0.0, 5.0, 50.0):
        assert lease.handle(Tick(at)) == []
        assert lease.handle(CheckFailed(at)) == []
    assert lease.state is LeaseState.STANDBY
    assert lease.next_due() is None


def test_the_new_holder_waits_the_lease_and_the_margin_before_acting():
    lease = Lease(LEASE, MARGIN)
    assert lease.handle(LockAcquired(10.0)) == []
    assert lease.state is LeaseState.TAKING_OVER
    lease.handle(CheckOk(11.0))
    assert lease.handle(Tick(12.4)) == []
    assert lease.next_due() == 10.0 + LEASE + MARGIN
    assert lease.handle(CheckOk(12.5)) == [BecomeActive()]
    assert lease.acting


def test_the_active_stops_once_no_check_was_answered_for_the_lease():
    lease = active_lease()
    lease.handle(CheckOk(3.0))
    assert lease.next_due() == 3.0 + LEASE
    assert lease.handle(CheckFailed(4.0)) == []  # one slow answer is not yet a lost lease
    assert lease.acting
    assert lease.handle(Tick(4.99)) == []
    commands = lease.handle(Tick(5.0))
    assert commands == [StopActing(f"no check answered for {LEASE} s")]
    assert lease.state is LeaseState.STOPPED


def test_a_lost_lock_session_stops_the_active_at_once():
    lease = active_lease()
    lease.handle(CheckOk(3.0))
    assert lease.handle(LockLost(3.1)) == [StopActing("lock session lost")]


def test_a_stopped_app_never_acts_again():
    lease = active_lease()
    lease.handle(LockLost(3.0))
    assert lease.handle(LockAcquired(4.0)) == []
    assert lease.handle(CheckOk(5.0)) == []
    assert lease.handle(Tick(10.0)) == []
    assert lease.state is LeaseState.STOPPED
    assert lease.next_due() is None


def test_losing_the_lock_while_taking_over_is_back_to_waiting_with_nothing_to_stop():
    lease = Lease(LEASE, MARGIN)
    lease.handle(LockAcquired(0.0))
    assert lease.handle(LockLost(1.0)) == []
    assert lease.state is LeaseState.STANDBY
    lease.handle(LockAcquired(5.0))
    assert lease.handle(Tick(5.0 + LEASE + MARGIN)) == []  # no check since: expired
    assert lease.state is LeaseState.STANDBY


def test_the_old_holder_stops_before_the_new_one_acts_however_early_the_lock_is_let_go():
    # The old active's last answered check went out at 10.0; the server then let its lock go
    # at once (a terminated backend) and the standby took it straight away.
    old = active_lease()
    old.handle(CheckOk(10.0))
    new = Lease(LEASE, MARGIN)
    new.handle(LockAcquired(10.01))
    times = [10.0 + step * 0.05 for step in range(100)]
    old_stopped = next(t for t in times if old.handle(Tick(t)))
    new.handle(CheckOk(10.01))
    new_active = next(t for t in times if new.handle(CheckOk(t)) == [BecomeActive()])
    assert new_active - old_stopped >= MARGIN - 0.06
