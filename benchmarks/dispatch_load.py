"""Load of the dispatcher: a simulated fleet of 10,000 devices behind an embedded Dask
cluster with several workers; dispatch 1,000 measurements and report the throughput
(measurements/s) and the scheduler overhead per measurement in ms (wall time of the
batch minus the device time, per measurement, with devices measuring concurrently).

    python -m benchmarks.dispatch_load [--devices 10000] [--measurements 1000] [--workers 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from moo_compress.config import CompressionConfig
from moo_compress.device import Device
from moo_compress.dispatch import Dispatcher, Request, RetryPolicy, embedded_client
from moo_compress.measurement import Measurement

CONFIG = CompressionConfig((1, 3, 8, 8), {"conv": 8}, {"conv": 32}).to_json()


class TimedDevice(Device):
    """A simulated device whose measurement takes ``busy_s`` of wall time."""

    def __init__(self, device_id: str, busy_s: float) -> None:
        super().__init__(device_id, {32})
        self.busy_s = busy_s

    def measure(self, config: CompressionConfig) -> Measurement:
        time.sleep(self.busy_s)
        return Measurement(self.device_id, (1.0, 1.1, 0.9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--measurements", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8, help="threads per worker")
    parser.add_argument("--busy-ms", type=float, default=0.0, help="device time per measurement")
    args = parser.parse_args()
    devices = [TimedDevice(f"sim-{i:05d}", args.busy_ms / 1e3) for i in range(args.devices)]
    rng = np.random.default_rng(0)
    picks = rng.choice(args.devices, args.measurements, replace=args.measurements > args.devices)
    policy = RetryPolicy(outlier_min_history=0)
    start = time.perf_counter()
    with embedded_client(devices, args.workers, args.threads) as client:
        startup = time.perf_counter() - start
        dispatcher = Dispatcher(client, [[d.device_id] for d in devices], policy)
        begin = time.perf_counter()
        outcomes = list(dispatcher.measure([Request(int(i), CONFIG) for i in picks]))
        wall = time.perf_counter() - begin
    failed = sum(o.error is not None for o in outcomes)
    n = len(outcomes)
    device_s = args.busy_ms / 1e3 * n / (args.workers * args.threads)
    print(
        f"{args.devices} devices, {args.workers} workers x {args.threads} threads, "
        f"{n} measurements ({failed} failed), device time {args.busy_ms} ms each\n"
        f"cluster start-up {startup:.2f} s; batch wall {wall:.2f} s; "
        f"throughput {n / wall:.0f} measurements/s; scheduler overhead "
        f"{(wall - device_s) / n * 1e3:.2f} ms per measurement"
    )


if __name__ == "__main__":
    main()
