"""The shared training engine on toy steps: what it saves and says when a run stops (no models needed)."""

import pytest
import torch

from review_sentiment.checkpoints import (
    Checkpoint,
    FingerprintWords,
    OptimizerState,
    StoredValue,
    fingerprint_difference,
    rng_states,
)
from review_sentiment.distributed import Processes
from review_sentiment.errors import Interrupted, RsError
from review_sentiment.training import (
    EpochEnd,
    StepEnd,
    StopWords,
    TrainingEnd,
    TrainingLoop,
    has_fast_cpu_bf16,
    training_precision,
)
from tests.conftest import RecordingReporter


class Toy:
    """Three steps of an epoch each; `cut` interrupts the step of that number before it is complete."""

    def __init__(self, cut=None, save_fails=False):
        self.step, self.saves, self.cut, self.save_fails, self.cleaned = 0, [], cut, save_fails, False

    def save(self):
        if self.save_fails:
            raise KeyboardInterrupt  # Ctrl-C again, while the checkpoint is written
        self.saves.append(self.step)

    def loop(self, save=True, on_step=None, resumed_at=None, processes=None):
        words = StopWords(
            step=lambda n: f"step {n} of 3",
            detail=lambda: " (toy)",
            nothing_kept="Stopped before the first checkpoint was saved: nothing to resume.",
            on_nothing_kept=lambda: setattr(self, "cleaned", True),
        )
        if resumed_at is not None:
            self.step = resumed_at
        return TrainingLoop(
            "Toy",
            3,
            step=self.step,
            resumed=resumed_at is not None,
            save=self.save if save else None,
            checkpoint_folder="toy-checkpoint",
            words=words,
            reporter=RecordingReporter(),
            on_step=on_step,
            save_after_epoch=True,
            processes=processes,
        )

    def steps(self, loop):
        while self.step < 3:
            with loop.held():
                with loop.changing(current=self.step + 1):
                    if self.cut == self.step + 1:
                        raise KeyboardInterrupt  # as a second Ctrl-C does, mid-step
                    self.step += 1
                yield StepEnd(self.step, "", hook=(self.step,))
            if self.step == 2:
                with loop.held():
                    yield EpochEnd(1)
        with loop.held():
            yield TrainingEnd()


def _stop_at(wanted):
    def on_step(step):
        if step == wanted:
            raise KeyboardInterrupt

    return on_step


def test_a_run_saves_after_an_epoch_and_at_the_end():
    toy = Toy()
    loop = toy.loop()
    loop.run(toy.steps(loop))
    assert toy.saves == [2, 3]


def test_stopped_after_a_complete_step_saves_it():
    toy = Toy()
    loop = toy.loop(on_step=_stop_at(1))
    with pytest.raises(Interrupted, match=r"^Stopped at step 1 of 3 \(toy\); checkpoint saved in toy-checkpoint\."):
        loop.run(toy.steps(loop))
    assert toy.saves == [1] and not loop.guard.holding


def test_stopped_during_a_step_keeps_the_last_checkpoint():
    toy = Toy(cut=3)
    loop = toy.loop()
    with pytest.raises(Interrupted, match=r"Stopped during step 3 of 3; the checkpoint of step 2 in toy-checkpoint"):
        loop.run(toy.steps(loop))
    assert toy.saves == [2]


def test_stopped_while_saving_keeps_the_previous_checkpoint_and_does_not_save_again():
    toy = Toy()
    loop = toy.loop(resumed_at=1)  # a checkpoint of step 1 exists
    toy.save_fails = True
    with pytest.raises(Interrupted, match=r"while saving the checkpoint of step 2 of 3; the checkpoint of step 1"):
        loop.run(toy.steps(loop))


def test_stopped_before_any_checkpoint_says_so_and_cleans_up():
    toy = Toy(cut=1)
    loop = toy.loop()
    with pytest.raises(Interrupted, match="nothing to resume"):
        loop.run(toy.steps(loop))
    assert toy.saves == [] and toy.cleaned


def test_without_a_checkpoint_ctrl_c_goes_through_as_it_is():
    toy = Toy()
    loop = toy.loop(save=False, on_step=_stop_at(2))
    with pytest.raises(KeyboardInterrupt) as stopped:
        loop.run(toy.steps(loop))
    assert not isinstance(stopped.value, Interrupted) and toy.saves == []


WORDS = FingerprintWords(
    arguments_key="arguments",
    option_names={"seed": "--seed"},
    described={"data": lambda old, new: "the data differs"},
    other=lambda key, old, new: f"{key} was {old} there, {new} now",
)


def test_fingerprint_differences_are_said_per_command():
    saved = {"data": "a", "arguments": {"seed": 1}, "device": "cpu", "gone": 1}
    current = {"data": "b", "arguments": {"seed": 2}, "device": "cuda"}
    assert fingerprint_difference(saved, current, WORDS) == (
        "the data differs; --seed was 1 there, 2 now; device was cpu there, cuda now; gone was 1 there, None now"
    )
    partial = FingerprintWords(**{**WORDS.__dict__, "saved_only": False})  # keys not known yet are not compared
    assert "gone" not in fingerprint_difference(saved, current, partial)


def test_a_checkpoint_restores_its_parts_and_refuses_another_fingerprint(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    counters = {"step": 7}
    shuffler = torch.Generator().manual_seed(5)

    def parts(optimizer, counters, shuffler):
        return [
            OptimizerState("optimizer", optimizer),
            *rng_states("cpu", {"rng.order": shuffler}),
            StoredValue("run", lambda: dict(counters), counters.update),
        ]

    checkpoint = Checkpoint(tmp_path / "ckpt", {"data": "a"}, 1, WORDS, readme="toy\n")
    checkpoint.save(parts(optimizer, counters, shuffler))
    expected_draw = torch.rand(3, generator=shuffler)

    fresh_optimizer = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.1)
    fresh_counters, fresh_shuffler = {}, torch.Generator()
    checkpoint.restore(checkpoint.read(), parts(fresh_optimizer, fresh_counters, fresh_shuffler))
    assert fresh_counters == {"step": 7} and torch.equal(torch.rand(3, generator=fresh_shuffler), expected_draw)
    assert torch.equal(
        fresh_optimizer.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"]
    )
    assert (tmp_path / "ckpt" / "README.txt").read_text() == "toy\n"

    other = Checkpoint(tmp_path / "ckpt", {"data": "b"}, 1, WORDS, readme="")
    with pytest.raises(RsError, match="Cannot resume from .*: the data differs. Pass the same options"):
        other.read()


def test_a_run_without_processes_in_its_fingerprint_was_one_process():
    one, two = {"data": "a"}, {"data": "a", "processes": 2}
    assert fingerprint_difference(one, one, WORDS) == ""  # checkpoints of one process leave it out
    assert fingerprint_difference(two, one, WORDS) == "processes was 2 there, 1 now"
    assert fingerprint_difference(one, two, WORDS) == "processes was 1 there, 2 now"


class OtherProcessStops(Processes):
    """Two processes, the other of which got Ctrl-C after step `at`: what `sum` over both gives."""

    world_size = 2

    def __init__(self, at):
        super().__init__("cpu")
        self.at, self.asked = at, 0

    def sum(self, values):
        self.asked += 1
        stop = self.asked >= self.at  # the StepEnd of step `at` is the at-th question
        return [values[0] + stop, *values[1:]]


def test_processes_stop_together_when_any_one_got_ctrl_c():
    toy = Toy()
    loop = toy.loop(processes=OtherProcessStops(at=2))
    with pytest.raises(Interrupted, match="Stopped at step 2 of 3 \\(toy\\); checkpoint saved"):
        loop.run(toy.steps(loop))
    assert toy.step == 2 and toy.saves == [2]


def test_fused_adamw_steps_as_the_plain_one():
    """rs finetune's AdamW is the fused kernel: the same update as PyTorch's loop of tensor ops, to float
    rounding, with weight decay on one group and none on the other, as finetune sets them up."""
    import torch

    torch.manual_seed(0)
    weights = [torch.randn(64, 32), torch.randn(32)]
    gradients = [[torch.randn_like(w) for w in weights] for _ in range(5)]
    results = []
    for fused in (False, True):
        parameters = [torch.nn.Parameter(w.clone()) for w in weights]
        groups = [{"params": parameters[:1], "weight_decay": 0.01}, {"params": parameters[1:], "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=5e-3, fused=fused, foreach=False if not fused else None)
        for step in gradients:
            for parameter, gradient in zip(parameters, step, strict=True):
                parameter.grad = gradient.clone()
            optimizer.step()
        results.append([p.detach() for p in parameters])
    for plain, fused in zip(*results, strict=True):
        assert not torch.equal(plain, weights[0] if plain.dim() == 2 else weights[1])  # it moved
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)


def test_training_precision_on_a_cpu():
    # auto: bf16 only where AMX or AVX512-BF16 make it fast (fp32 elsewhere, where bf16 is slower than fp32)
    assert training_precision("cpu", "auto") == (torch.bfloat16 if has_fast_cpu_bf16() else None)
    assert training_precision("cpu", "fp32") is None
    assert training_precision("cpu", "bf16") == torch.bfloat16  # asked for: runs everywhere, if slowly
    with pytest.raises(RsError, match="fp16 is for GPUs.*use bf16"):
        training_precision("cpu", "fp16")
