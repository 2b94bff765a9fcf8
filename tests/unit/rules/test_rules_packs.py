"""Each bundled pack selects its own domain only, and its health rules cover all of its
kinds (issue 15, reproduction 5): over the bundled mixed catalogue and the simulator's."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from riskwatch.catalog import CatalogEntry, SensorRegistry
from riskwatch.model import Batch
from riskwatch.rules.compile import select
from riskwatch.rules.parse import RuleSpec, load_rules
from riskwatch.rules.stage import compile_files

CONFIG = Path(str(resources.files("riskwatch") / "config"))
PACKS = {
    d: CONFIG / "rules" / f"{d}.yaml" for d in ("coal_mine", "hazchem", "tailings", "electricity")
}
HEALTH = ("no_data", "out_of_range")


def _mixed() -> SensorRegistry:
    reg = SensorRegistry()
    reg.load_catalog([CONFIG / "catalog" / "mixed.csv"])
    return reg


def _specs(domain: str) -> list[RuleSpec]:
    return load_rules([PACKS[domain]]).files[0].rules


def _selected(reg: SensorRegistry, r: RuleSpec) -> np.ndarray:
    masks = [select(reg, r.match, r.exclude)] if r.match else []
    if r.compound is not None:
        masks += [select(reg, t.match, None) for t in r.compound.terms if t.match]
    return np.flatnonzero(np.logical_or.reduce(masks)) if masks else np.zeros(0, int)


def test_every_catalogue_row_has_a_domain_in_the_bundled_catalogues() -> None:
    for f in sorted((CONFIG / "catalog").glob("*.csv")):
        reg = SensorRegistry()
        reg.load_catalog([f])
        assert set(reg.column("domain").tolist()) <= set(PACKS), f.name
        assert "" not in reg.column("domain").tolist(), f.name


@pytest.mark.parametrize("domain", PACKS)
def test_a_pack_selects_no_sensor_of_another_domain(domain: str) -> None:
    reg = _mixed()
    dom = reg.column("domain")
    for r in _specs(domain):
        ids = _selected(reg, r)
        others = sorted({str(d) for d in dom[ids]} - {domain})
        assert others == [], f"{r.name} selects sensors of {others}"


@pytest.mark.parametrize("domain", PACKS)
def test_the_health_rules_of_a_pack_cover_every_sensor_of_its_domain(domain: str) -> None:
    reg = _mixed()
    mine = set(np.flatnonzero(reg.column("domain") == domain).tolist())
    assert mine
    for kind in HEALTH:
        covered: set[int] = set()
        for r in _specs(domain):
            per_sensor = r.no_data is None or r.no_data.per == "sensor"
            if r.kind == kind and per_sensor:
                covered |= set(_selected(reg, r).tolist())
        missed = [reg.key(i) for i in sorted(mine - covered)]
        assert covered == mine, f"{domain} {kind}: misses {missed}"


def test_a_chemical_plants_thermometer_and_o2_raise_no_coal_alert() -> None:
    # the reproduction: hazchem TK101-TT above range and silent, O2 at 18 %
    reg = _mixed()
    rs = compile_files(list(PACKS.values()), reg)
    tt = reg.id_of("chem1/tankfarm1/TK101-TT")
    o2 = reg.id_of("chem1/tankfarm1/O2-tankfarm1")
    assert tt is not None and o2 is not None
    s = 10**9
    sigs = rs.process(Batch.from_arrays([0, 0, 10 * s], [tt, o2, tt], [200.0, 18.0, 24.0]), 10 * s)
    sigs += rs.tick(600 * s)
    by_sensor = {(x.rule, x.sensor) for x in sigs if x.sensor in (tt, o2)}
    assert {rule for rule, _ in by_sensor} == {
        "process_temp_high", "hazchem_out_of_range", "o2_deficient", "hazchem_no_data",
    }  # fmt: skip
    assert not any(rule.startswith(("coal_", "o2_low", "temp_")) for rule, _ in by_sensor)


def test_points_without_a_domain_stay_watched_by_the_pack_of_their_kind() -> None:
    # an older catalogue without the column: methane and O2 still alarm (coal-mine pack)
    reg = SensorRegistry()
    reg.apply_catalog([CatalogEntry("m1", "f1", "CH4-1", "ch4", location="working_face"),
                       CatalogEntry("m1", "f1", "O2-1", "o2"),
                       CatalogEntry("m1", "f1", "LEL-1", "lel")])  # fmt: skip
    rs = compile_files(list(PACKS.values()), reg)
    s = 10**9
    sigs = rs.process(Batch.from_arrays([0, 0, 0], [0, 1, 2], [2.0, 18.0, 60.0]), 0)
    assert sorted((x.rule, x.sensor) for x in sigs) == [
        ("ch4_face", 0), ("lel_gas", 2), ("o2_low", 1),
    ]  # fmt: skip
    del s


def test_the_simulators_catalogues_carry_their_domain() -> None:
    from riskwatch.sensors_sim.plants import BUILDERS
    from riskwatch.sensors_sim.scenario import PlantSpec

    for kind, build in BUILDERS.items():
        t = build(PlantSpec(type=kind, enterprise="e1")).build()
        assert set(t.tags["domain"].tolist()) == {kind}
