"""Decode cost of the ingest adapters (docs/ingest.md): a KJ CDSS file of 10 000 records
(GB18030) and a Sparkplug NDATA of 1 000 metrics by alias, best of 5, in-process.

    python bench/bench_adapters.py
"""

import time

from riskwatch.catalog import SensorRegistry
from riskwatch.config.adapters import KjConfig
from riskwatch.ingest.decode import Decoder
from riskwatch.ingest.health import AdapterSignals
from riskwatch.ingest.kj import KjDecoder
from riskwatch.ingest.sparkplug.host import SparkplugDecoder
from riskwatch.ingest.sparkplug.payloads import Payload
from riskwatch.ingest.topics import TopicTemplate

RECEIVED = 1_796_378_460_000_000_000  # 2026-12-04 02:01 UTC


def best_of(n: int, f):  # type: ignore[no-untyped-def]
    best, out = 1e9, None
    for _ in range(n):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    reg = SensorRegistry()
    dec = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}"))
    kj = KjDecoder(KjConfig(drop_dir="."), dec, AdapterSignals())
    n = 10_000
    cddy = "".join(f"P{i};甲烷;回风巷;%;0;4;1.0;;;;1.5;1.0~\n" for i in range(2000))
    kj.decode("kj/M_CDDY_20261204100000.txt", cddy.encode("gb18030"), RECEIVED)
    cdss = "".join(f"P{i % 2000};甲烷;回风巷;0.{i % 9};%;0;2026-12-04 10:00:{i % 60:02d}~\n"
                   for i in range(n)).encode("gb18030")  # fmt: skip
    s, out = best_of(5, lambda: kj.decode("kj/M_CDSS_20261204100000.txt", cdss, RECEIVED))
    print(f"KJ CDSS {n} records ({len(cdss)} bytes GB18030): {s * 1000:.1f} ms = "
          f"{n / s:,.0f} records/s; batch {len(out.batch)}")  # fmt: skip

    sp = SparkplugDecoder(dec, AdapterSignals(), None)
    birth = Payload(timestamp=1_795_880_000_000, seq=0)
    for i in range(1000):
        birth.metrics.add(name=f"m{i}", alias=i, datatype=10, double_value=1.0)
    sp.decode("spBv1.0/g/NBIRTH/n", birth.SerializeToString(), 1_795_880_000_000_000_000)
    seq = [0]

    def ndata():  # type: ignore[no-untyped-def]
        seq[0] += 1
        d = Payload(timestamp=1_795_880_000_000 + seq[0], seq=seq[0])
        for i in range(1000):
            d.metrics.add(alias=i, datatype=10, double_value=2.0)
        body = d.SerializeToString()
        t = time.perf_counter()
        r = sp.decode("spBv1.0/g/NDATA/n", body, 1_795_880_000_100_000_000)
        return time.perf_counter() - t, r

    runs = [ndata() for _ in range(5)]
    s = min(r[0] for r in runs)
    print(f"Sparkplug NDATA 1000 metrics by alias: {s * 1000:.2f} ms = {1000 / s:,.0f} "
          f"metrics/s; batch {len(runs[-1][1].batch)}")  # fmt: skip


if __name__ == "__main__":
    main()
