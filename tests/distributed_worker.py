"""Started by torchrun in tests/test_distributed.py: `rs finetune` or `rs pretrain` in each of the processes, and
a Ctrl-C (SIGINT) that reaches only one of them, after a given step, as a `kill -INT` of one rank would.

    python -m torch.distributed.run --nproc_per_node 2 tests/distributed_worker.py finetune DATA BASE OUTPUT STEP RANK
"""

import os
import signal
import sys

from review_sentiment.config import FinetuneArguments, PretrainArguments
from review_sentiment.errors import Interrupted


def interrupting(step: int, rank: int):
    def on_step(*progress) -> None:
        done = progress[1] if command == "finetune" else progress[0]  # (epoch, step) / (step, result)
        if done == step and int(os.environ["RANK"]) == rank:
            os.kill(os.getpid(), signal.SIGINT)

    return on_step


command, data, base, output, stop_step, stop_rank = sys.argv[1:7]
on_step = interrupting(int(stop_step), int(stop_rank))
try:
    if command == "finetune":
        from review_sentiment.finetune import finetune

        args = FinetuneArguments(epochs=3, learning_rate=8e-3, batch_size=19, early_stopping_patience=0)
        finetune(data, base, args, output_dir=output, on_step=on_step)
    else:
        from review_sentiment.pretrain import pretrain

        args = PretrainArguments(size="mini", max_length=64, batch_size=8, max_steps=12, seed=3, vocab_size=800)
        pretrain(data, args, output_dir=output, on_step=on_step)
except Interrupted as stopped:
    print(f"rank {os.environ['RANK']}: {stopped}", flush=True)
    sys.exit(130)
