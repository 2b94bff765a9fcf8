"""Durable engine state: what stages hand over to survive a restart, and its files.

- :mod:`~riskwatch.state.tree`: the one protocol a stage implements
  (:class:`Durable`: ``dump_state()`` / ``load_state(tree, sensors)``), the
  :class:`SensorTable` that keys per-sensor arrays by sensor key instead of dense id,
  the :class:`SensorMap` that carries them onto a new registry, and the generic
  helpers over the arrays a dataclass holds;
- :mod:`~riskwatch.state.snapshot`: the versioned snapshot file (written atomically:
  write, fsync, rename, fsync of the folder);
- :mod:`~riskwatch.state.journal`: the write-ahead journal of decoded batches and timer
  ticks between snapshots, fsynced before the batch's messages are acknowledged.

The engine's :class:`~riskwatch.durability.EngineState` puts them together.
"""

from riskwatch.state.journal import Journal, JournalRecord, RecordKind, read_segment
from riskwatch.state.snapshot import FORMAT_VERSION, Snapshot, read_snapshot, write_snapshot
from riskwatch.state.tree import (
    Durable,
    Restored,
    Resumes,
    SensorMap,
    SensorTable,
    StateTree,
    fields_of,
    with_fields,
)

__all__ = [
    "FORMAT_VERSION",
    "Durable",
    "Journal",
    "JournalRecord",
    "RecordKind",
    "Restored",
    "Resumes",
    "SensorMap",
    "SensorTable",
    "Snapshot",
    "StateTree",
    "fields_of",
    "read_segment",
    "read_snapshot",
    "with_fields",
    "write_snapshot",
]
