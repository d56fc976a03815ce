"""Does rs pretrain leave the process slower at matmuls? The fp32 peak timed before and after one training_speed
pretraining run in the same process, again 10 s later, with the threads still alive.

    python bench/peak_probe.py small
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
import training_speed  # noqa: E402
from predict_speed import matmul_peak  # noqa: E402


def main() -> None:
    from review_sentiment.inference import set_cpu_threads
    from review_sentiment.reporting import silence_library_logs

    size = sys.argv[1] if len(sys.argv) > 1 else "small"
    silence_library_logs()
    set_cpu_threads()
    print("peak before:", matmul_peak(), flush=True)
    data = training_speed.prepare_data(2000)
    result = training_speed._pretrain("rs-pretrain", size, data)
    print(f"rs pretrain {size}: {result['tokens'] / result['train_seconds']:,.0f} tokens/s", flush=True)
    print("peak right after:", matmul_peak(), flush=True)
    print("python threads:", [thread.name for thread in threading.enumerate()])
    print("os threads:", len(os.listdir(f"/proc/{os.getpid()}/task")))
    time.sleep(10)
    print("peak 10 s later:", matmul_peak(), flush=True)


if __name__ == "__main__":
    main()
