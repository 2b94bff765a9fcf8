"""The live board's fan-out re-checks its session before every push: logout, removal and a
change of role or scope end the stream instead of pushing (a manual session table stands
in for the user file; the hub is the real one)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from riskwatch.console.hub import Hub


@dataclass(frozen=True)
class U:
    name: str
    ents: tuple[str, ...]

    def sees(self, e: str) -> bool:
        return "*" in self.ents or e in self.ents


@dataclass(frozen=True)
class A:
    id: str
    enterprise: str


def drain(q: asyncio.Queue[Any]) -> list[Any]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def run(body: Any) -> Any:
    async def main() -> Any:
        return await body()

    return asyncio.run(main())


def test_pushes_stop_at_logout_removal_and_scope_change() -> None:
    async def body() -> list[list[Any]]:
        now: dict[str, U | None] = {"s1": U("li", ("m1",)), "s2": U("wang", ("*",)),
                                    "s3": U("zhao", ("m1",))}  # fmt: skip
        hub = Hub(render=lambda a: a.id)
        qs = {}
        for sid, u in list(now.items()):
            assert u is not None
            _, qs[sid] = hub.join(sid, u, lambda sid=sid: now[sid])
        hub.publish([(A("a1", "m1"), None), (A("a2", "m2"), None)])
        await asyncio.sleep(0)
        first = [drain(qs[s]) for s in ("s1", "s2", "s3")]
        now["s1"] = None  # li logged out (or was removed)
        now["s3"] = U("zhao", ("m1", "m2"))  # zhao's scope changed
        hub.publish([(A("a3", "m2"), None)])
        await asyncio.sleep(0)
        second = [drain(qs[s]) for s in ("s1", "s2", "s3")]
        return [first, second, [len(hub)]]

    first, second, n = run(body)
    assert first == [[["a1"]], [["a1", "a2"]], [["a1"]]]
    assert second == [[None], [["a3"]], [None]]  # ended, not pushed (a3 would reach zhao now)
    assert n == [1]


def test_end_session_and_recheck_without_a_push() -> None:
    async def body() -> tuple[list[Any], list[Any], int, int]:
        now: dict[str, U | None] = {"s1": U("li", ("m1",)), "s2": U("wang", ("m1",))}
        hub = Hub(render=lambda a: a.id)
        _, q1 = hub.join("s1", U("li", ("m1",)), lambda: now["s1"])
        _, q2 = hub.join("s2", U("wang", ("m1",)), lambda: now["s2"])
        hub.end_session("s1")
        assert hub.recheck() == 0
        now["s2"] = U("wang", ("m1",))  # equal again: nothing changed
        assert hub.recheck() == 0
        now["s2"] = None
        ended = hub.recheck()
        await asyncio.sleep(0)
        return drain(q1), drain(q2), ended, len(hub)

    assert run(body) == ([None], [None], 1, 0)
