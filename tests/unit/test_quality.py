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


S = 10**9


def test_a_fast_clock_is_flagged_and_never_advances_the_watermark() -> None:
    st = QualityStage(max_clock_skew_s=2.0)
    # 290 s ahead of arrival: skewed; 2 s ahead is within the limit; -1 s is transit delay
    b = Batch.from_arrays([300 * S, 12 * S, 9 * S], [0, 1, 2], [0.3, 1.0, 1.0],
                          received=[10 * S, 10 * S, 10 * S])  # fmt: skip
    assert st.process(b, CTX).flags.tolist() == [Flags.CLOCK_SKEW, 0, 0]
    assert st.watermark[:3].tolist() == [np.iinfo(np.int64).min, 12 * S, 9 * S]
    # the true readings after the skewed one are in order, not out of order
    b2 = Batch.from_arrays([11 * S, 12 * S, 13 * S], [0, 0, 0], [2.0, 2.0, 2.0],
                           received=[11 * S, 12 * S, 13 * S])  # fmt: skip
    assert st.process(b2, CTX).flags.tolist() == [0, 0, 0]
    assert int(st.watermark[0]) == 13 * S


def test_without_arrival_times_nothing_is_skewed() -> None:
    st = QualityStage(max_clock_skew_s=0.0)
    assert st.process(Batch.from_arrays([10**18], [0], [1.0]), CTX).flags.tolist() == [0]


def test_a_second_value_for_the_same_time_is_conflicting_a_redelivery_is_not() -> None:
    st = QualityStage()
    dc = Flags.DUPLICATE | Flags.CONFLICTING
    b = Batch.from_arrays([5, 5, 5, 5], [0, 0, 0, 1], [0.3, 0.3, 2.0, 1.0])
    assert st.process(b, CTX).flags.tolist() == [0, Flags.DUPLICATE, dc, 0]
    # across batches: against the value of the first reading at the watermark (0.3)
    b2 = Batch.from_arrays([5, 5, 5], [0, 0, 1], [2.0, 0.3, 1.0])
    assert st.process(b2, CTX).flags.tolist() == [dc, Flags.DUPLICATE, Flags.DUPLICATE]
    assert st.watermark_value[:2].tolist() == [0.3, 1.0]


def test_negative_skew_limit_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="max_clock_skew_s"):
        QualityStage(max_clock_skew_s=-1)
