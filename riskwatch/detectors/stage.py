"""The detectors decision stage: detector files -> ensembles over selected sensors -> Signals.

Each enabled detector entry selects sensors by registry columns (``match`` /
``exclude``, the same selector language as rules; the mask is rebuilt when the
registry's ``generation`` moves) and runs its :class:`~riskwatch.detectors.ensemble.Ensemble`
over their readings. Readings flagged calibrating, faulty, duplicate or out of order are
neither scored nor learned. One ``firing`` signal is emitted when an anomaly window
opens and one ``resolved`` when it closes (on a later reading or, for a sensor gone
quiet, on :meth:`DetectorStage.tick`), never one per reading.

Reload keeps the state of entries whose definition did not change; a changed entry
starts fresh but takes over its open anomaly windows; an invalid file raises
:class:`~riskwatch.errors.ConfigErrors` and the running set stays. Removed entries are
named in the :class:`~riskwatch.pipeline.StageReload` so their alerts end
(``rule_removed``).

>>> import tempfile, pathlib
>>> from riskwatch.catalog import SensorRegistry
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "d.yaml").write_text(
...     "detectors: [{name: lvl, match: {kind: t}, members: {z: {type: robust}}}]\\n")
>>> DetectorStage([d / "d.yaml"], SensorRegistry()).names()
['lvl']
"""

from __future__ import annotations

import io
import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.config.engine import EngineConfig
from riskwatch.detectors.base import GroupedDetector
from riskwatch.detectors.config import DetectorSpec, load_detector_file
from riskwatch.detectors.ensemble import Ensemble, EnsembleOutput
from riskwatch.model import PROCESS_SKIP, Batch, EndReason, Signal, SignalSource, SignalState
from riskwatch.pipeline import StageContext, StageReload
from riskwatch.rules.compile import select
from riskwatch.state.tree import Restored, SensorMap, StateTree

__all__ = ["DetectorStage"]

log = logging.getLogger("riskwatch.detectors")

_SKIP = np.uint8(PROCESS_SKIP)


@dataclass
class _Entry:
    spec: DetectorSpec
    ensemble: Ensemble
    mask: np.ndarray
    generation: int = -1
    watched: bool = False  # any sensor selected


#: what a detector state may be built of (a snapshot is the engine's own file, but it is
#: still read as data: anything else in it is refused, not executed)
_PICKLE_ROOTS = frozenset({"riskwatch", "numpy", "river", "collections", "copyreg", "builtins"})
_BUILTINS_OK = frozenset({"dict", "list", "tuple", "set", "frozenset", "int", "float", "bool",
                          "str", "bytes", "bytearray", "complex", "slice", "range", "object",
                          "type"})  # fmt: skip


class _StateUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        root = module.split(".")[0]
        if root not in _PICKLE_ROOTS or (root == "builtins" and name not in _BUILTINS_OK):
            raise pickle.UnpicklingError(f"{module}.{name} is not detector state")
        return super().find_class(module, name)


def _load(paths: Sequence[Path]) -> list[DetectorSpec]:
    specs: list[DetectorSpec] = []
    for p in paths:
        specs += [s for s in load_detector_file(p).detectors if s.enabled]
    return specs


class DetectorStage:
    """A :class:`~riskwatch.pipeline.DecisionStage` over a set of detector files."""

    name = "detectors"

    def __init__(self, paths: Sequence[str | Path], registry: SensorRegistry) -> None:
        self.paths = [Path(p) for p in paths]
        self.registry = registry
        self.entries = [_Entry(s, s.build(), np.zeros(0, dtype=bool)) for s in _load(self.paths)]
        for e in self.entries:  # select sensors and size the state now, not on a reading
            self._mask(e)
        log.info("detectors: %s", ", ".join(self.names()) or "none")

    def names(self) -> list[str]:
        return [e.spec.name for e in self.entries]

    def _mask(self, e: _Entry) -> np.ndarray:
        if e.generation != self.registry.generation or len(e.mask) < len(self.registry):
            e.mask = select(self.registry, e.spec.match, e.spec.exclude)
            e.generation = self.registry.generation
            e.watched = bool(e.mask.any())
            if e.mask.any():
                e.ensemble.reserve(int(np.flatnonzero(e.mask)[-1]) + 1)
            for det in e.ensemble.members.values():
                if isinstance(det, GroupedDetector):
                    col = det.group_by
                    if self.registry.has_column(col):
                        _, groups = np.unique(
                            self.registry.column(col).astype(str), return_inverse=True
                        )
                    else:
                        groups = np.zeros(len(self.registry), dtype=np.int64)
                    det.bind_groups(groups)
        return e.mask

    def process(self, batch: Batch, ctx: StageContext) -> list[Signal]:
        if len(batch) == 0 or not self.entries:
            return []
        good = (batch.flags & _SKIP) == 0
        batch = batch.take(np.flatnonzero(good)) if not good.all() else batch
        out: list[Signal] = []
        sid = batch.sensor
        lo, hi = (int(sid.min()), int(sid.max())) if len(sid) else (0, -1)
        for e in self.entries:
            mask = self._mask(e)
            if not e.watched:
                continue
            if lo >= 0 and hi < len(mask):
                inside = mask[sid]
            else:
                inside = np.zeros(len(sid), dtype=bool)
                ok = (sid >= 0) & (sid < len(mask))
                inside[ok] = mask[sid[ok]]
            if inside.all():
                b = batch
            elif inside.any():
                b = batch.take(np.flatnonzero(inside))
            else:
                continue
            res = e.ensemble.process(b.sensor, b.value, b.time, exact_low=False)
            hits = np.flatnonzero(res.raised | res.cleared)
            if len(hits):
                out += self._signals(e, b, hits, res)
        return out

    def _signals(self, e: _Entry, b: Batch, hits: np.ndarray, res: EnsembleOutput) -> list[Signal]:
        """Signals of the readings that opened or closed a window (columns converted to
        Python values once, not per signal)."""
        spec, n_reg, out = e.spec, len(self.registry), []
        sids, times, values = b.sensor[hits].tolist(), b.time[hits].tolist(), b.value[hits].tolist()
        raised, scores = res.raised[hits].tolist(), res.score[hits].tolist()
        rounded = np.round(res.score[hits], 4).tolist()
        names = list(res.members)
        cols = [np.round(res.members[k][hits], 4).tolist() for k in names]  # 4 digits: for people
        thr = f"{spec.threshold:g}"
        for j, sid in enumerate(sids):
            vals = [c[j] for c in cols]
            ms = dict(zip(names, vals, strict=True))
            key = self.registry.key(sid) if sid < n_reg else str(sid)
            if raised[j]:
                top = vals.index(max(vals))  # the first strongest member
                msg = (
                    f"{spec.name}: anomaly on {key}, score {scores[j]:.2f} >= {thr} "
                    f"(strongest: {names[top]} {vals[top]:.2f}), value {values[j]:g}"
                )
            else:
                msg = f"{spec.name}: {key} back to normal (no anomaly for {spec.hold!s})"
            out.append(
                Signal(
                    rule=spec.name,
                    sensor=sid,
                    time=times[j],
                    state=SignalState.FIRING if raised[j] else SignalState.RESOLVED,
                    level=spec.level if raised[j] else None,
                    value=values[j],
                    threshold=spec.threshold,
                    message=msg,
                    source=SignalSource.DETECTOR,
                    score=rounded[j],
                    extra={"members": ms},
                )
            )
        return out

    def tick(self, ctx: StageContext) -> list[Signal]:
        out: list[Signal] = []
        for e in self.entries:
            for sid in e.ensemble.expire(ctx.now_ns).tolist():
                key = self.registry.key(sid) if sid < len(self.registry) else str(sid)
                out.append(
                    Signal(
                        rule=e.spec.name,
                        sensor=int(sid),
                        time=ctx.now_ns,
                        state=SignalState.RESOLVED,
                        level=None,
                        value=float("nan"),
                        threshold=e.spec.threshold,
                        message=f"{e.spec.name}: {key} window closed (quiet for {e.spec.hold!s})",
                        source=SignalSource.DETECTOR,
                        score=float(e.ensemble.peak(np.array([sid]))[0]),
                    )
                )
        return out

    def watched_files(self) -> list[Path]:
        return list(self.paths)

    def reconfigure(self, cfg: EngineConfig) -> None:
        """The detector files of a re-read engine config (loaded by the next reload)."""
        self.paths = [cfg.path(p) for p in cfg.detectors]

    def reload(self, ctx: StageContext) -> StageReload:
        """Swap in the files' current content; raise ConfigErrors to keep the old set.

        An unchanged entry keeps its state; a changed one starts fresh but takes over
        the open anomaly windows of the sensors it still selects (they close ``hold``
        after their last hot reading, as any window); the ones it no longer selects end
        (``unwatched``). Removed entries are named in the result: the alert sink ends
        their alerts (``rule_removed``)."""
        specs = _load(self.paths)
        old = {e.spec.name: e for e in self.entries}
        new: list[_Entry] = []
        kept, changed, added = [], [], []
        ended: list[Signal] = []
        for s in specs:
            prev = old.get(s.name)
            if prev is not None and prev.spec.fingerprint() == s.fingerprint():
                prev.spec = s  # level, match or message may have changed: no state impact
                prev.generation = -1
                new.append(prev)
                kept.append(s.name)
                gone = self._outside(prev, prev.ensemble)
                if len(gone):  # a narrowed match: those sensors' windows end here
                    prev.ensemble.forget(gone)
                    ended += [self._unwatched(s, int(sid), ctx.now_ns) for sid in gone.tolist()]
                continue
            entry = _Entry(s, s.build(), np.zeros(0, dtype=bool))
            self._mask(entry)
            new.append(entry)
            if prev is None:
                added.append(s.name)
                continue
            changed.append(s.name)
            gone = self._outside(entry, prev.ensemble)
            was_open = prev.ensemble.open_ids()
            entry.ensemble.adopt_windows(prev.ensemble, np.setdiff1d(was_open, gone))
            ended += [self._unwatched(s, int(sid), ctx.now_ns) for sid in gone.tolist()]
        removed = sorted(set(old) - {s.name for s in specs})
        self.entries = new
        log.info(
            "detectors reloaded: state kept: %s; changed (fresh state, open windows taken "
            "over): %s; added: %s; removed: %s",
            ", ".join(kept) or "none", ", ".join(changed) or "none", ", ".join(added) or "none",
            ", ".join(removed) or "none",
        )  # fmt: skip
        return StageReload(self.name, SignalSource.DETECTOR, added=tuple(added),
                           changed=tuple(changed), removed=tuple(removed), kept=len(kept),
                           ended=tuple(ended))  # fmt: skip

    def _outside(self, e: _Entry, old: Ensemble) -> np.ndarray:
        """The sensors with a window open in ``old`` that entry ``e`` does not select."""
        mask = self._mask(e)
        was_open = old.open_ids()
        inside = was_open < len(mask)
        inside[inside] = mask[was_open[inside]]
        return was_open[~inside]

    def _unwatched(self, spec: DetectorSpec, sid: int, now_ns: int) -> Signal:
        key = self.registry.key(sid) if sid < len(self.registry) else str(sid)
        return Signal(
            rule=spec.name, sensor=sid, time=now_ns, state=SignalState.RESOLVED, level=None,
            value=float("nan"), threshold=spec.threshold,
            message=f"{spec.name}: detector changed by a reload no longer watches {key}",
            source=SignalSource.DETECTOR, reason=EndReason.UNWATCHED,
        )  # fmt: skip

    # ------------------------------------------------------------------ durable state
    def dump_state(self) -> StateTree:
        """Each entry's whole ensemble (members' baselines, calibrator, windows), by
        detector name with its fingerprint. The ensemble is pickled as bytes: its
        members hold per-sensor state of many shapes, and a member added later is saved
        without code of its own."""
        out: StateTree = {"v": 2, "n_sensors": len(self.registry), "entries": {}}
        for e in self.entries:
            # protocol 5 hands the big arrays over out of band: one memcpy each instead of
            # a copy into the pickle stream and another out of it
            buffers: list[pickle.PickleBuffer] = []
            blob = pickle.dumps(e.ensemble, protocol=5, buffer_callback=buffers.append)
            out["entries"][e.spec.name] = {
                "fingerprint": e.spec.fingerprint(),
                "ensemble": np.frombuffer(blob, np.uint8).copy(),
                "buffers": [np.frombuffer(b.raw(), np.uint8).copy() for b in buffers],
            }
        return out

    def load_state(self, tree: StateTree, sensors: SensorMap) -> Restored:
        """Take over the ensembles of unchanged detectors. Their arrays are indexed by
        sensor id, so they are taken over only when every sensor kept its id (the same
        catalogue in the same order); otherwise they start fresh and the log says so."""
        out = Restored()
        entries = tree.get("entries")
        if not isinstance(entries, dict):
            out.dropped.append("detectors: no detector state in the snapshot")
            return out
        mine = {e.spec.name: e for e in self.entries}
        if not sensors.identity:
            if entries:
                out.dropped.append(
                    "detectors: sensor ids moved (catalogue changed): baselines start fresh for "
                    + ", ".join(sorted(entries))
                )
            return out
        kept = 0
        for name, st in entries.items():
            e = mine.get(name)
            if e is None:
                out.dropped.append(f"detectors: {name} no longer loaded")
                continue
            if not isinstance(st, dict) or st.get("fingerprint") != e.spec.fingerprint():
                out.dropped.append(f"detectors: {name} changed since the snapshot (fresh state)")
                continue
            blob, buffers = st.get("ensemble"), st.get("buffers", [])
            try:
                assert isinstance(blob, np.ndarray) and isinstance(buffers, list)
                assert all(isinstance(b, np.ndarray) for b in buffers)
                ensemble = _StateUnpickler(io.BytesIO(blob.tobytes()), buffers=buffers).load()
            except Exception as exc:  # any unreadable blob: start this detector fresh
                out.dropped.append(f"detectors: {name} state unreadable ({exc!r})")
                continue
            if not isinstance(ensemble, Ensemble):
                out.dropped.append(f"detectors: {name} state is not an ensemble")
                continue
            e.ensemble = ensemble
            e.generation = -1
            self._mask(e)
            kept += 1
        out.counts["detectors"] = kept
        return out
