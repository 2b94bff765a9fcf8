"""Simulated plants that publish over MQTT, with injected faults and ground-truth labels.

- :mod:`~riskwatch.sensors_sim.scenario`: scenario files (plants, events), strict parsing
- :mod:`~riskwatch.sensors_sim.plants`: coal mine, tank farm, tailings pond, electricity
- :mod:`~riskwatch.sensors_sim.signals`: vectorised signal shapes and AR(1) noise
- :mod:`~riskwatch.sensors_sim.simulator`: stepping, fault injection, labels
- :mod:`~riskwatch.sensors_sim.publisher`: payload forms, MQTT, pacing, load generator
- :mod:`~riskwatch.sensors_sim.labels`: label files
- :mod:`~riskwatch.sensors_sim.cli`: ``riskwatch simulate``

See docs/simulators.md.

>>> from riskwatch.sensors_sim import Simulator, load_scenario
>>> sim = Simulator(load_scenario("tailings"), start_ns=1_780_000_000_000_000_000)
>>> len(sim.table), len(sim.labels) > 0
(11, True)
"""

from __future__ import annotations

from riskwatch.sensors_sim.labels import LabelWriter, read_labels
from riskwatch.sensors_sim.publisher import (
    Encoder,
    MemorySink,
    MqttSink,
    RateReport,
    RunReport,
    encoder_for,
    run_rate,
    run_scenario,
)
from riskwatch.sensors_sim.scenario import Scenario, bundled_scenarios, load_scenario
from riskwatch.sensors_sim.simulator import Readings, Simulator, resolve_start

__all__ = [
    "Encoder",
    "LabelWriter",
    "MemorySink",
    "MqttSink",
    "RateReport",
    "Readings",
    "RunReport",
    "Scenario",
    "Simulator",
    "bundled_scenarios",
    "encoder_for",
    "load_scenario",
    "read_labels",
    "resolve_start",
    "run_rate",
    "run_scenario",
]
