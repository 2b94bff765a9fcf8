"""Coal mine: working faces, heading faces and the main return (煤矿安全监控).

Every area (a ``site``, served by one substation/gateway 分站) has methane sensors at
its regulatory locations (docs/regulations.md §1.1: upper corner T0, face T1, return airway T2 at a
longwall; heading face and heading return at a heading), CO, O2, temperature, wind speed
and a feed (馈电) sensor whose ``controls`` tag names the face methane sensor whose
power-off it checks. Values follow the shift pattern: two production shifts with
shearer cutting cycles and a maintenance night shift (检修班).

>>> from riskwatch.sensors_sim.scenario import PlantSpec
>>> t = build(PlantSpec(type="coal_mine", enterprise="mine1")).build()
>>> sorted(set(t.location[t.kind == "ch4"]))[:3]
['heading_face', 'heading_return', 'main_return']
>>> t.tags["controls"][t.kind == "feed"].tolist()[:2]
['CH4-F1-T1', 'CH4-F2-T1']
"""

from __future__ import annotations

from riskwatch.sensors_sim.plants.base import Pattern, TableBuilder
from riskwatch.sensors_sim.scenario import PlantSpec

__all__ = ["build"]

# docs/regulations.md §1.1 methane alarm / power-off / restore (% CH4) by location
CH4_SETPOINTS = {
    "upper_corner": (1.0, 1.5, 1.0),
    "working_face": (1.0, 1.5, 1.0),
    "return_airway": (1.0, 1.0, 1.0),
    "heading_face": (1.0, 1.5, 1.0),
    "heading_return": (1.0, 1.0, 1.0),
    "main_return": (0.75, None, None),
}
# background and cutting-cycle amplitude of methane by location (% CH4)
CH4_LEVEL = {
    "upper_corner": (0.35, 0.25),
    "working_face": (0.30, 0.25),
    "return_airway": (0.28, 0.18),
    "heading_face": (0.25, 0.20),
    "heading_return": (0.22, 0.12),
    "main_return": (0.30, 0.08),
}


def _area(
    b: TableBuilder,
    ent: str,
    site: str,
    gw: str,
    tag: str,
    ch4_locs: list[tuple[str, str]],
    face_loc: str,
    period: float,
    phase: float,
    *,
    feed: bool = True,
    wind: tuple[float, float, float] = (1.8, 0.25, 4.0),
) -> None:
    for code, loc in ch4_locs:
        alarm, poff, restore = CH4_SETPOINTS[loc]
        base, amp = CH4_LEVEL[loc]
        sp = {"alarm": alarm}
        if poff is not None:
            sp["power_off"] = poff
            sp["restore"] = restore  # type: ignore[assignment]
        b.add(
            ent, site, gw, f"CH4-{tag}-{code}", "ch4", "%", loc, (0, 10), period,
            base=base, sd=0.015, rho=0.95, pattern=Pattern.CUTTING, amp=amp, phase=phase,
            decimals=2, setpoints=sp,
        )  # fmt: skip
    b.add(
        ent, site, gw, f"CO-{tag}", "co", "ppm", ch4_locs[-1][1], (0, 500), period,
        base=4.0, sd=0.6, pattern=Pattern.CUTTING, amp=3.0, phase=phase, decimals=0,
        setpoints={"alarm": 24},
    )  # fmt: skip
    b.add(
        ent, site, gw, f"O2-{tag}", "o2", "%", face_loc, (0, 25), period,
        base=20.75, sd=0.04, decimals=1, setpoints={"low": 20},
    )  # fmt: skip
    b.add(
        ent, site, gw, f"T-{tag}", "temp", "°C", face_loc, (0, 50), period,
        base=22.5, sd=0.15, rho=0.98, pattern=Pattern.DAILY, amp=1.0, decimals=1,
        setpoints={"high": 26, "high_high": 30},
    )  # fmt: skip
    wbase, wlow, whigh = wind
    b.add(
        ent, site, gw, f"WS-{tag}", "wind", "m/s", face_loc, (0, 15), period,
        base=wbase, sd=0.08, decimals=2, setpoints={"low": wlow, "high": whigh},
    )  # fmt: skip
    if feed:
        b.add(
            ent, site, gw, f"FEED-{tag}", "feed", "", face_loc, (0, 1), period,
            base=1.0, sd=0.0, pattern=Pattern.FEED, decimals=0,
            tags={"controls": f"CH4-{tag}-T1"},
        )  # fmt: skip


def build(spec: PlantSpec) -> TableBuilder:
    """Sensor rows of one mine: ``2 x scale`` longwall faces, ``scale`` headings, one main
    return; with ``group`` > 1, that many areas share a district site and substation.
    KJ points report every 10 s unless ``period`` says otherwise (docs/regulations.md §1.3: polling
    <= 10-25 s)."""
    period = spec.period.seconds if spec.period is not None else 10.0
    b = TableBuilder()
    ent = spec.enterprise
    g = spec.group

    def district(n: int, name: str) -> str:
        return name if g == 1 else f"district{(n - 1) // g + 1}"

    for i in range(1, 2 * spec.scale + 1):
        site = district(i, f"face{i}")
        _area(
            b, ent, site, f"GW-{site}", f"F{i}",
            [("T0", "upper_corner"), ("T1", "working_face"), ("T2", "return_airway")],
            "working_face", period, phase=(i * 1234.5) % 5400,
        )  # fmt: skip
    for i in range(1, spec.scale + 1):
        site = district(2 * spec.scale + i, f"heading{i}")
        _area(
            b, ent, site, f"GW-{site}", f"H{i}",
            [("T1", "heading_face"), ("T2", "heading_return")],
            "heading_face", period, phase=(i * 777.0) % 5400,
        )  # fmt: skip
    _area(
        b, ent, "main", "GW-main", "MR", [("T1", "main_return")], "main_return", period,
        phase=0.0, feed=False, wind=(5.5, 0.15, 8.0),
    )  # fmt: skip
    return b
