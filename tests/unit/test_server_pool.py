"""The choice among several servers: least outstanding requests, cool-down, trial, recovery."""

from __future__ import annotations

from thinkchain.models.backends.openai_compat import ServerPool


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pool(n: int = 2) -> tuple[ServerPool, Clock]:
    clock = Clock()
    return ServerPool([f"http://s{i}/v1" for i in range(n)], clock=clock), clock


def test_requests_go_to_the_server_with_the_fewest_in_flight():
    p, _ = pool(3)
    a, b, c = p.servers
    assert p.pick() is a  # ties: the first listed, so one chain keeps a warm prefix cache
    a.outstanding = 2
    b.outstanding = 1
    assert p.pick() is c
    c.outstanding = 3
    assert p.pick() is b


def test_a_failed_server_is_skipped_until_its_cool_down_ends():
    p, clock = pool()
    a, b = p.servers
    p.failed(a)
    assert p.is_down(a.url) and p.pick() is b
    clock.now += 1.01
    assert not p.is_down(a.url) and p.pick() is a


def test_cool_down_doubles_with_each_consecutive_failure_and_is_capped():
    p, clock = pool()
    a, _ = p.servers
    lengths = []
    for _ in range(8):
        p.failed(a)
        lengths.append(round(a.down_until - clock.now, 3))
        clock.now = a.down_until  # the trial after the cool-down fails again
    assert lengths == [1, 2, 4, 8, 16, 30, 30, 30]


def test_requests_in_flight_when_a_server_dies_count_as_one_failure():
    p, clock = pool()
    a, _ = p.servers
    for _ in range(10):  # ten streams cut by the same crash
        p.failed(a)
    assert a.failures == 1 and a.down_until - clock.now == 1.0


def test_a_recovering_server_gets_one_trial_request_at_a_time():
    p, clock = pool()
    a, b = p.servers
    p.failed(a)
    clock.now += 1.5
    b.outstanding = 5
    trial = p.pick()
    assert trial is a
    a.outstanding += 1  # the trial is in flight
    # More requests do not pile onto a server that has not proven itself yet...
    assert p.pick() is b
    # ...and once the trial succeeds it gets its share again.
    a.outstanding -= 1
    p.succeeded(a)
    a.outstanding = 1
    assert p.pick() is a


def test_when_every_server_is_down_the_one_back_first_is_tried():
    p, clock = pool(3)
    a, b, c = p.servers
    p.failed(a)
    clock.now += 0.5
    p.failed(b)
    p.failed(b)  # same outage: ignored
    clock.now += 0.1
    p.failed(c)
    assert p.pick() is a  # back at 101.0, before b (101.5) and c (101.6)


def test_a_single_server_is_never_put_aside():
    p, _ = pool(1)
    (only,) = p.servers
    p.failed(only)
    p.failed(only)
    assert not p.is_down(only.url) and p.pick() is only
