from __future__ import annotations

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.model import Batch, Flags
from riskwatch.pipeline import StageContext
from riskwatch.quality import QualityStage

CTX = StageContext(now_ns=0, registry=SensorRegistry())


def test_duplicates_inside_a_batch_and_across_batches() -> None:
    st = QualityStage()
    b1 = Batch.from_arrays([1, 1, 2], [3, 3, 3], [1.0, 1.0, 2.0], flags=[Flags.CALIBRATING, 0, 0])
    out = st.process(b1, CTX)
    # the first of a repeated pair is kept clean, the repeat is flagged; other flags survive
    assert out.flags.tolist() == [Flags.CALIBRATING, Flags.DUPLICATE, 0]
    out2 = st.process(Batch.from_arrays([2, 1, 7], [3, 3, 9], [2.0, 1.0, 5.0]), CTX)
    # only the newest time per sensor is remembered: an older repeat is "out of order"
    assert out2.flags.tolist() == [Flags.DUPLICATE, Flags.OUT_OF_ORDER, 0]


def test_state_grows_with_new_sensor_ids() -> None:
    st = QualityStage()
    st.process(Batch.from_arrays([5], [0], [1.0]), CTX)
    out = st.process(Batch.from_arrays([4, 4], [0, 100_000], [1.0, 1.0]), CTX)
    assert out.flags.tolist() == [Flags.OUT_OF_ORDER, 0]
    assert np.all(out.value == 1.0)
