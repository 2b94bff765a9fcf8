"""Both receivers behave alike behind the one Receiver protocol: arrival stamped with the
engine's clock, counted before it can be received, nothing new after stop_receiving, acks
handed on in order. The child's side is played over a real socket pair."""

from __future__ import annotations

import socket
import threading
from multiprocessing.connection import Connection
from types import SimpleNamespace
from typing import Any

import pytest

from riskwatch.clock import ManualClock
from riskwatch.config.engine import MqttConfig
from riskwatch.ingest.process_receiver import ProcessReceiver
from riskwatch.ingest.receiver import Receiver
from riskwatch.ingest.thread_receiver import ThreadReceiver


def paho_message(mid: int, topic: str = "rw/m1/s1/gw") -> Any:
    return SimpleNamespace(topic=topic, payload=f"p{mid}".encode(), mid=mid, qos=1)


class ThreadRig:
    """A ThreadReceiver fed as paho's network thread would."""

    def __init__(self, clock: ManualClock, arrived: list[int]) -> None:
        self.rx = ThreadReceiver(MqttConfig(), clock=clock, on_arrival=arrived.append,
                                 max_buffered=100)  # fmt: skip
        self.acked: list[tuple[int, int]] = []
        self.rx.client.ack = lambda mid, qos: self.acked.append((mid, qos))  # type: ignore[method-assign]

    def deliver(self, *mids: int) -> None:
        for mid in mids:
            self.rx.accept(paho_message(mid))

    def acks_sent(self) -> list[tuple[int, int]]:
        return self.acked


class ProcessRig:
    """A ProcessReceiver talking to a pretend child on the other end of a socket pair."""

    def __init__(self, clock: ManualClock, arrived: list[int]) -> None:
        ours, theirs = socket.socketpair()
        self.child = Connection(theirs.detach())
        self.rx = ProcessReceiver(MqttConfig(), clock=clock, on_arrival=arrived.append,
                                  max_buffered=100)  # fmt: skip
        self.rx.attach(Connection(ours.detach()))

    def deliver(self, *mids: int) -> None:
        self.child.send(("msgs", [(m.topic, m.payload, m.mid, m.qos)
                                  for m in map(paho_message, mids)]))  # fmt: skip

    def acks_sent(self) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        while self.child.poll(0.5):
            kind, acks = self.child.recv()
            assert kind == "ack"
            out += acks
        return out


@pytest.fixture(params=[ThreadRig, ProcessRig], ids=["thread", "process"])
def rig_kind(request: pytest.FixtureRequest) -> Any:
    return request.param


def test_both_are_receivers() -> None:
    def accepts(rx: Receiver) -> Receiver:
        return rx

    clock = ManualClock(0)
    accepts(ThreadReceiver(MqttConfig(), clock=clock, on_arrival=lambda n: None))
    accepts(ProcessReceiver(MqttConfig(), clock=clock, on_arrival=lambda n: None))


def test_arrival_is_stamped_with_the_engines_clock_and_counted(rig_kind: Any) -> None:
    clock, arrived = ManualClock(1_000), []
    rig = rig_kind(clock, arrived)
    rig.deliver(1, 2)
    clock.set(5_000)  # what was delivered before keeps its stamp
    rig.deliver(3)
    got: list[Any] = []
    while len(got) < 3:
        got += rig.rx.receive(1.0)
    assert [(m[0], m[1], m[3], m[4]) for m in got] == [
        ("rw/m1/s1/gw", b"p1", 1, 1), ("rw/m1/s1/gw", b"p2", 2, 1), ("rw/m1/s1/gw", b"p3", 3, 1)
    ]  # fmt: skip
    if rig_kind is ThreadRig:  # stamped in paho's callback
        assert [m[2] for m in got] == [1_000, 1_000, 5_000]
    else:  # stamped when the engine reads the child's chunk: after both deliveries here
        assert [m[2] for m in got] == [5_000, 5_000, 5_000]
    assert sum(arrived) == 3
    assert rig.rx.backlog() == 0


def test_nothing_is_received_after_stop_receiving(rig_kind: Any) -> None:
    arrived: list[int] = []
    rig = rig_kind(ManualClock(0), arrived)
    rig.deliver(1)
    if rig_kind is ThreadRig:
        rig.rx.stop_receiving()
        rig.deliver(2)  # paho still calling back: dropped, never counted
        assert [m[3] for m in rig.rx.receive(0.1)] == [1]  # what the engine held already
    else:
        rig.rx.stop_receiving()  # what the child sent stays unread: the broker redelivers
        assert rig.rx.receive(0.1) == []
        assert arrived == []
    assert rig.rx.receive(0.0) == []
    assert sum(arrived) == (1 if rig_kind is ThreadRig else 0)


def test_acks_go_out_in_the_order_given(rig_kind: Any) -> None:
    rig = rig_kind(ManualClock(0), [])
    rig.rx.ack_many([(3, 1), (1, 1), (2, 1)])
    rig.rx.ack_many([(4, 1)])
    assert rig.acks_sent() == [(3, 1), (1, 1), (2, 1), (4, 1)]


def test_thread_receiver_takes_what_is_queued_without_waiting() -> None:
    rig = ThreadRig(ManualClock(0), [])
    rig.deliver(*range(10))
    assert rig.rx.backlog() == 10
    assert len(rig.rx.receive(0.0)) == 10
    assert rig.rx.backlog() == 0


def test_thread_receiver_backpressure_blocks_pahos_thread_when_full() -> None:
    arrived: list[int] = []
    rx = ThreadReceiver(MqttConfig(), clock=ManualClock(0), on_arrival=arrived.append,
                        max_buffered=2)  # fmt: skip
    rx.accept(paho_message(1))
    rx.accept(paho_message(2))
    third = threading.Thread(target=rx.accept, args=(paho_message(3),), daemon=True)
    third.start()
    third.join(0.2)
    assert third.is_alive()  # paho's thread waits: it stops reading the socket
    assert [m[3] for m in rx.receive(0.0)] == [1, 2]
    third.join(2)
    assert not third.is_alive() and [m[3] for m in rx.receive(1.0)] == [3]


def test_process_receiver_reports_connection_news_from_the_child() -> None:
    news: list[bool] = []
    ours, theirs = socket.socketpair()
    child = Connection(theirs.detach())
    rx = ProcessReceiver(MqttConfig(), clock=ManualClock(0), on_arrival=lambda n: None,
                         on_connected=news.append)  # fmt: skip
    rx.attach(Connection(ours.detach()))
    child.send(("connected", True))
    assert rx.receive(1.0) == [] and rx.wait_connected(0) and news == [True]
    child.send(("connected", False))
    rx.receive(1.0)
    assert not rx.connected.is_set() and news == [True, False]


def test_process_receiver_publishes_through_the_child() -> None:
    ours, theirs = socket.socketpair()
    child = Connection(theirs.detach())
    rx = ProcessReceiver(MqttConfig(), clock=ManualClock(0), on_arrival=lambda n: None)
    rx.attach(Connection(ours.detach()))
    rx.publish("rw-alerts/m1", b"{}", 1, True)
    assert child.recv() == ("pub", "rw-alerts/m1", b"{}", 1, True)


def test_process_receiver_survives_the_child_going_away() -> None:
    ours, theirs = socket.socketpair()
    child = Connection(theirs.detach())
    rx = ProcessReceiver(MqttConfig(), clock=ManualClock(7), on_arrival=lambda n: None)
    rx.attach(Connection(ours.detach()))
    child.send(("msgs", [("t", b"x", 1, 1)]))
    child.close()
    assert [m[3] for m in rx.receive(1.0)] == [1]  # what came before the end still counts
    assert rx.receive(0.01) == []
