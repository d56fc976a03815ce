import json
import shutil
from types import SimpleNamespace

import pytest
import torch

from review_sentiment.config import MODEL_SIZES, PretrainArguments
from review_sentiment.errors import Interrupted, RsError
from review_sentiment.pretrain import (
    PackedBatch,
    choose_mask_positions,
    mask_for_generator,
    new_electra_pair,
    pack_sequences,
    pretrain,
    replaced_token_labels,
    rtd_step,
)
from tests.conftest import SAMPLE, RecordingReporter

CLS, SEP, PAD, MASK = 2, 3, 0, 4


def test_packing_fills_sequences_with_whole_reviews():
    reviews = [[10, 11, 12], [13, 14], [], [15] * 20, [16, 17, 18, 19]]
    packed = pack_sequences(reviews, max_length=10, cls_id=CLS, sep_id=SEP)
    assert packed == [
        [CLS, 10, 11, 12, SEP, CLS, 13, 14, SEP],
        [CLS] + [15] * 8 + [SEP],  # longer than a sequence: truncated to fit one on its own
        [CLS, 16, 17, 18, 19, SEP],
    ]
    assert all(len(sequence) <= 10 for sequence in packed)


def test_packed_batch_keeps_reviews_apart_with_their_own_positions():
    batch = PackedBatch.from_sequences([[CLS, 10, 11, SEP, CLS, 12, SEP], [CLS, 13, SEP]], PAD, CLS)
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2], [0, 1, 2, 0, 0, 0, 0]]
    assert batch.real.tolist() == [[True] * 7, [True] * 3 + [False] * 4]
    may_attend = (batch.attention_mask[:, 0] == 0).int().tolist()
    assert may_attend[0][0] == [1, 1, 1, 1, 0, 0, 0]  # the first review's [CLS] sees only the first review
    assert may_attend[0][5] == [0, 0, 0, 0, 1, 1, 1]
    assert may_attend[1][1] == [1, 1, 1, 0, 0, 0, 0]  # and never the padding


def test_a_packed_review_gets_the_same_outputs_as_alone(tiny_pair, sample_table):
    tokenizer, _, discriminator, _ = tiny_pair
    first, second = tokenizer(sample_table["review"].tolist()[:2], add_special_tokens=False)["input_ids"]
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    packed = PackedBatch.from_sequences([[cls, *first, sep, cls, *second, sep]], pad, cls)
    alone = PackedBatch.from_sequences([[cls, *second, sep]], pad, cls)
    discriminator.eval()  # no dropout; the fixture is shared, so train mode is restored below
    with torch.no_grad():
        packed_logits = discriminator(**packed.model_inputs(packed.input_ids)).logits[0, len(first) + 2 :]
        alone_logits = discriminator(**alone.model_inputs(alone.input_ids)).logits[0]
    discriminator.train()
    torch.testing.assert_close(packed_logits, alone_logits, atol=1e-4, rtol=1e-4)


def test_a_changed_token_moves_the_logits_of_its_own_review_only(tiny_pair, sample_table):
    # Context: the discriminator must see the other tokens of a review (a mask that let each token see only itself
    # would pass the test above) and nothing of the review packed beside it.
    tokenizer, _, discriminator, _ = tiny_pair
    first, second = tokenizer(sample_table["review"].tolist()[2:4], add_special_tokens=False)["input_ids"]
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    sequence = [cls, *first, sep, cls, *second, sep]
    changed = list(sequence)
    changed[2] = tokenizer.convert_tokens_to_ids("좋") if changed[2] != tokenizer.convert_tokens_to_ids("좋") else 10
    batch = PackedBatch.from_sequences([sequence, changed], pad, cls)
    discriminator.eval()
    with torch.no_grad():
        logits = discriminator(**batch.model_inputs(batch.input_ids)).logits
    discriminator.train()
    moved = (logits[1] - logits[0]).abs()
    own_review = [i for i in range(len(first) + 2) if i != 2]
    assert float(moved[own_review].min()) > 0.0  # small in untrained weights, but never none
    assert float(moved[len(first) + 2 :].max()) <= 1e-6  # none in exact arithmetic


def test_replacements_follow_the_sampling_temperature():
    from review_sentiment.pretrain import sample_replacements

    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 8.0, 4.0, 0.0, 0.0, 0.0]]).repeat(4000, 1)
    special = torch.tensor([0, 1, 2, 3, 4])

    def shares(temperature, uniform=0.0):
        args = SimpleNamespace(sampling_temperature=temperature, uniform_replacements=uniform)
        sampled = sample_replacements(logits, args, special, torch.Generator().manual_seed(0))
        return torch.bincount(sampled, minlength=10).float() / len(sampled)

    cold, standard, warm = shares(0.01), shares(1.0), shares(2.0)
    assert cold[5] == 1.0  # a temperature near 0: the most likely token only
    assert 0.97 < standard[5] < 0.99  # softmax: e^8 / (e^8 + e^4 + 8) = 0.98
    assert 0.012 < standard[6] < 0.024  # e^4 / (e^8 + e^4 + 8) = 0.018: the tail is drawn as often as it should be
    assert 0.75 < warm[5] < 0.81 and warm[6] > standard[6]  # flatter: e^4 / (e^4 + e^2 + 8) = 0.78
    uniform = shares(1.0, uniform=1.0)
    assert float(uniform[:5].sum()) == 0.0 and float(uniform[5:].min()) > 0.15  # never a special token


def test_held_out_measures_leave_training_as_it_was(tiny_pair, sample_table):
    from review_sentiment.pretrain import replacement_measures

    tokenizer, generator, discriminator, _ = tiny_pair
    reviews = tokenizer(sample_table["review"].tolist()[:30], add_special_tokens=False)["input_ids"]
    torch.manual_seed(5)
    rng_state = torch.get_rng_state()
    measures = replacement_measures(generator, discriminator, reviews, tokenizer, max_length=64)
    assert torch.equal(torch.get_rng_state(), rng_state)  # dropout's RNG: a resumed run stays identical
    assert generator.training and discriminator.training
    assert 0.0 <= measures["held_out_auc"] <= 1.0
    # untrained: about as uncertain as a uniform guess over the vocabulary
    assert abs(measures["held_out_generator_loss"] - torch.log(torch.tensor(len(tokenizer))).item()) < 1.0
    assert replacement_measures(generator, discriminator, reviews, tokenizer, max_length=64) == measures


def test_mask_positions_are_fifteen_percent_of_real_tokens_and_never_special():
    ids = torch.tensor([[CLS] + list(range(10, 50)) + [SEP] + [PAD] * 8])
    candidates = (ids != PAD) & (ids != CLS) & (ids != SEP)
    rng = torch.Generator().manual_seed(0)
    chosen = [choose_mask_positions(candidates, 0.15, rng) for _ in range(20)]
    assert all(int(positions.sum()) == 6 for positions in chosen)  # round(40 × 0.15)
    assert not any((positions & ~candidates).any() for positions in chosen)
    assert len({tuple(p.nonzero()[:, 1].tolist()) for p in chosen}) > 1  # dynamic: new positions each batch
    short = torch.tensor([[True, False]])
    assert int(choose_mask_positions(short, 0.15, rng).sum()) == 1  # at least one


def test_generator_input_masks_most_chosen_positions_and_keeps_some():
    ids = torch.arange(10, 4010).reshape(1, -1)
    positions = torch.ones_like(ids, dtype=torch.bool)
    masked = mask_for_generator(ids, positions, MASK, torch.Generator().manual_seed(0))
    share_masked = float((masked == MASK).float().mean())
    assert 0.82 < share_masked < 0.88  # 85 % [MASK], 15 % left unchanged, none random
    assert ((masked == MASK) | (masked == ids)).all()


def test_replaced_token_equal_to_the_original_is_labeled_original():
    original = torch.tensor([[CLS, 10, 11, 12, 13, SEP]])
    # positions 1, 2 and 3 were masked; the generator sampled 10 (the original) at 1, others elsewhere
    corrupted = torch.tensor([[CLS, 10, 99, 98, 13, SEP]])
    assert replaced_token_labels(original, corrupted).tolist() == [[0, 0, 1, 1, 0, 0]]


@pytest.fixture(scope="module")
def tiny_pair(tiny_base):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    args = PretrainArguments(size="mini")
    import dataclasses

    from review_sentiment import config

    tiny = dataclasses.replace(
        config.MODEL_SIZES["mini"],
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        intermediate_size=64,
        embedding_size=32,
        generator_hidden_size=16,
    )
    args = SimpleNamespace(
        model_size=tiny,
        max_length=64,
        mask_prob=0.15,
        disc_weight=50.0,
        uniform_replacements=0.0,
        sampling_temperature=1.0,
    )
    torch.manual_seed(0)
    generator, discriminator = new_electra_pair(tokenizer, args)
    return tokenizer, generator, discriminator, args


def test_generator_and_discriminator_share_embeddings(tiny_pair):
    tokenizer, generator, discriminator, _ = tiny_pair
    shared = discriminator.electra.embeddings.word_embeddings.weight
    assert generator.electra.embeddings.word_embeddings.weight is shared
    assert generator.generator_lm_head.weight is shared
    assert generator.config.hidden_size * 2 == discriminator.config.hidden_size


def test_loss_decreases_on_a_fixed_batch(tiny_pair, sample_table):
    tokenizer, generator, discriminator, args = tiny_pair
    texts = sample_table["review"].tolist()[:40]
    sequences = pack_sequences(
        tokenizer(texts, add_special_tokens=False)["input_ids"], 64, tokenizer.cls_token_id, tokenizer.sep_token_id
    )
    batch = PackedBatch.from_sequences(sequences, tokenizer.pad_token_id, tokenizer.cls_token_id)
    special = torch.tensor(tokenizer.all_special_ids)
    parameters = list({id(p): p for m in (generator, discriminator) for p in m.parameters()}.values())
    optimizer = torch.optim.AdamW(parameters, lr=3e-3)
    losses = []
    for _ in range(25):
        rng = torch.Generator().manual_seed(1)  # same masks and samples every step: a fixed batch
        loss, result = rtd_step(generator, discriminator, batch, special, tokenizer.mask_token_id, args, rng)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(result.loss)
    # measured 0.55-0.56 over seeds 1-5. (0.26-0.30 with torch.multinomial: with its per-token draws fixed, the
    # same replacements came back every step and the discriminator memorized them; with the draws advancing, as
    # in training, both samplers gave the same losses, 0.590-0.593 of the first after 40 steps.)
    assert losses[-1] < 0.65 * losses[0]


QUICK = dict(size="mini", max_length=64, batch_size=8, max_steps=4, seed=3, vocab_size=800)


@pytest.mark.slow
def test_from_scratch_output_is_a_finetune_base(tmp_path):
    from review_sentiment.config import FinetuneArguments
    from review_sentiment.finetune import finetune

    result = pretrain(SAMPLE, PretrainArguments(**QUICK), output_dir=tmp_path / "pre")
    assert result.steps == 4 and result.tokens_seen > 0
    assert 0 <= result.padding_share < 0.5
    meta = json.loads((tmp_path / "pre" / "rs_pretrain.json").read_text())
    assert meta["corpus"]["reviews"] == 360 and meta["steps"] == 4
    assert meta["corpus"]["fingerprint"].startswith("sha256:")
    assert {"generator_loss", "discriminator_loss", "replaced_accuracy", "original_accuracy"} <= set(meta["final"])
    # 18 of the 360 reviews (5 %) are kept out of training to measure the pair at the end and every 250 steps
    assert meta["corpus"]["held_out_reviews"] == 18
    assert 0.0 <= meta["final"]["held_out_auc"] <= 1.0 and meta["final"]["held_out_generator_loss"] > 0
    assert (tmp_path / "pre" / "generator" / "model.safetensors").exists()

    args = FinetuneArguments(epochs=1, early_stopping_patience=0)
    model = finetune(SAMPLE, str(tmp_path / "pre"), args, output_dir=tmp_path / "cls")
    assert model.labels == ["negative", "neutral", "positive"]


@pytest.mark.slow
def test_continued_pretraining_uses_the_saved_generator(tmp_path):
    pretrain(SAMPLE, PretrainArguments(**QUICK), output_dir=tmp_path / "first")
    result = pretrain(
        SAMPLE,
        PretrainArguments(**{**QUICK, "max_steps": 2}),
        base_name=str(tmp_path / "first"),
        output_dir=tmp_path / "second",
    )
    meta = json.loads((result.output_dir / "rs_pretrain.json").read_text())
    assert meta["base"]["source"] == str(tmp_path / "first")
    mini = MODEL_SIZES["mini"]
    assert meta["generator"]["hidden_size"] == mini.generator_hidden_size  # the saved generator, not a new one
    assert meta["learning_rate"] == pytest.approx(0.2 * mini.learning_rate)
    assert meta["arguments"]["sampling_temperature"] == 1.0  # a trained generator: ELECTRA's sampling

    # Without its generator (as a published discriminator usually comes), a new one starts at the unigram level
    # and samples at temperature 2, as mini does from scratch.
    alone = tmp_path / "discriminator-only"
    shutil.copytree(tmp_path / "first", alone, ignore=shutil.ignore_patterns("generator", "checkpoint"))
    one_step = PretrainArguments(**{**QUICK, "max_steps": 1})
    result = pretrain(SAMPLE, one_step, base_name=str(alone), output_dir=tmp_path / "third")
    meta = json.loads((result.output_dir / "rs_pretrain.json").read_text())
    assert meta["arguments"]["sampling_temperature"] == 2.0
    assert meta["generator"]["hidden_size"] == max(64, mini.hidden_size // 4)  # a new generator


def _interrupt_at(wanted: int):
    def on_step(step, result):
        if step == wanted:
            raise KeyboardInterrupt

    return on_step


def _ctrl_c_during_step(monkeypatch, call: int, presses: int = 1):
    """Send a real SIGINT `presses` times in the middle of the `call`-th step of the next run (in its forward
    pass, before the backward pass and the optimizer step)."""
    import os
    import signal

    import review_sentiment.pretrain as pretrain_module

    calls = {"n": 0}
    rtd_step_unchanged = pretrain_module.rtd_step

    def rtd_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            for _ in range(presses):
                os.kill(os.getpid(), signal.SIGINT)
        return rtd_step_unchanged(*args, **kwargs)

    monkeypatch.setattr(pretrain_module, "rtd_step", rtd_step)


def _checkpoint_state(folder):
    return json.loads((folder / "checkpoint" / "training.json").read_text())["state"]


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # bf16: autocast on a CPU (auto's choice with AMX, AVX512-BF16)
def test_resume_after_interruptions_reaches_the_same_state(tmp_path, monkeypatch, precision):
    import review_sentiment.pretrain as pretrain_module

    # the held-out measures every 2 steps: a measurement that used training's RNGs would break the equality below
    monkeypatch.setattr(pretrain_module, "HISTORY_EVERY", 2)
    monkeypatch.setattr(pretrain_module, "MEASURE_EVERY", 2)
    args = PretrainArguments(**{**QUICK, "max_steps": 8, "precision": precision})
    straight = pretrain(SAMPLE, args, output_dir=tmp_path / "straight")
    assert [entry["step"] for entry in straight.history if "held_out_auc" in entry] == [2, 4, 6, 8]
    out = tmp_path / "resumed"

    # 1. Stopped after step 3 is complete (a KeyboardInterrupt from the hook: no wait).
    with pytest.raises(
        Interrupted, match=r"Stopped at step 3 of 8; checkpoint saved in .*rerun the same command with --resume"
    ):
        pretrain(SAMPLE, args, output_dir=out, on_step=_interrupt_at(3))
    checkpoint = out / "checkpoint"
    assert _checkpoint_state(out)["step"] == 3 and not (out / "rs_pretrain.json").exists()
    assert (checkpoint / "discriminator" / "model.safetensors").exists() and (checkpoint / "generator").is_dir()
    assert not [p.name for p in checkpoint.rglob("*") if p.suffix in (".pt", ".pth", ".bin", ".pkl")]  # no pickle

    # 2. A real Ctrl-C in the middle of step 5: the step is finished, then the checkpoint is saved there.
    _ctrl_c_during_step(monkeypatch, call=2)  # the resumed run's steps 4, 5
    with pytest.raises(Interrupted, match=r"Stopped at step 5 of 8; checkpoint saved"):
        pretrain(SAMPLE, args, output_dir=out, resume=True)
    assert _checkpoint_state(out)["step"] == 5

    # 3. Ctrl-C twice in the middle of step 7: it stops at once, the checkpoint of step 5 is kept.
    _ctrl_c_during_step(monkeypatch, call=2, presses=2)  # steps 6, 7
    with pytest.raises(Interrupted, match=r"Stopped during step 7 of 8; the checkpoint of step 5 in .* is kept"):
        pretrain(SAMPLE, args, output_dir=out, resume=True)
    assert _checkpoint_state(out)["step"] == 5
    assert not list(out.glob(".checkpoint.*"))  # no half-written checkpoint left behind

    monkeypatch.undo()
    monkeypatch.setattr(pretrain_module, "HISTORY_EVERY", 2)
    monkeypatch.setattr(pretrain_module, "MEASURE_EVERY", 2)
    assert pretrain_module.rtd_step is rtd_step
    result = pretrain(SAMPLE, args, output_dir=out, resume=True)
    assert result.steps == 8 and result.history == straight.history and result.final == straight.final
    for part in ("model.safetensors", "generator/model.safetensors"):  # bit-identical weights on a CPU
        assert (out / part).read_bytes() == (tmp_path / "straight" / part).read_bytes()
    meta = json.loads((out / "rs_pretrain.json").read_text())
    assert meta["steps"] == 8 and meta["history"] == straight.history
    assert meta["resumed"] == 2  # the third run saved nothing: its resume does not count
    assert meta["precision"] == precision


@pytest.mark.slow
def test_resume_refuses_other_arguments_or_corpus(tmp_path, sample_table):
    out = tmp_path / "m"
    with pytest.raises(Interrupted):
        pretrain(SAMPLE, PretrainArguments(**QUICK), output_dir=out, on_step=_interrupt_at(2))
    other = PretrainArguments(**{**QUICK, "learning_rate": 1e-3, "max_steps": 5, "seed": 4})
    with pytest.raises(
        RsError,
        match=r"Cannot resume from .*: --learning-rate was not given there, 0.001 now; --max-steps was 4 there, 5 "
        r"now; --seed was 3 there, 4 now\. Pass the same options",
    ):
        pretrain(SAMPLE, other, output_dir=out, resume=True)
    discriminator = out / "checkpoint" / "discriminator"  # any ELECTRA folder will do as another --base
    with pytest.raises(RsError, match=r"--base was not given \(from scratch\) there, .*discriminator now"):
        pretrain(SAMPLE, PretrainArguments(**QUICK), base_name=str(discriminator), output_dir=out, resume=True)
    fewer = tmp_path / "fewer.csv"
    sample_table.head(300).to_csv(fewer, index=False)
    with pytest.raises(RsError, match="the corpus differs"):
        pretrain(fewer, PretrainArguments(**QUICK), output_dir=out, resume=True)
    with pytest.raises(RsError, match=r"An interrupted run left a checkpoint in .*Pass --resume to continue it"):
        pretrain(SAMPLE, PretrainArguments(**QUICK), output_dir=out)
    assert _checkpoint_state(out)["step"] == 2
    explicit = PretrainArguments(**{**QUICK, "sampling_temperature": 2.0})  # what mini's default resolves to
    with pytest.raises(RsError, match=r"--sampling-temperature was 2.0 there, 1.5 now"):
        pretrain(SAMPLE, PretrainArguments(**{**QUICK, "sampling_temperature": 1.5}), output_dir=out, resume=True)

    state_file = out / "checkpoint" / "training.json"
    state = json.loads(state_file.read_text())
    recipe_1 = {**state, "fingerprint": {k: v for k, v in state["fingerprint"].items() if k != "recipe"}}
    state_file.write_text(json.dumps(recipe_1))
    with pytest.raises(RsError, match=r"made by an earlier rs \(pretraining recipe 1; this rs trains recipe 2\)"):
        pretrain(SAMPLE, explicit, output_dir=out, resume=True)
    state_file.write_text(json.dumps(state))

    steps = []
    # neither changes the result: the checkpoints' interval, the temperature the default resolves to
    every_minute = PretrainArguments(**{**QUICK, "checkpoint_minutes": 1.0, "sampling_temperature": 2.0})
    result = pretrain(SAMPLE, every_minute, output_dir=out, resume=True, on_step=lambda s, r: steps.append(s))
    assert steps == [3, 4] and result.steps == 4
    with pytest.raises(RsError, match="holds a finished run.*--force"):
        pretrain(SAMPLE, PretrainArguments(**QUICK), output_dir=out)
    steps = []
    pretrain(SAMPLE, other, output_dir=out, force=True, on_step=lambda s, r: steps.append(s))
    assert steps == [1, 2, 3, 4, 5]  # --force starts over


@pytest.mark.slow
def test_resume_finds_the_default_named_run_or_starts_from_the_beginning(tmp_path):
    args = PretrainArguments(**{**QUICK, "max_steps": 2})
    reporter = RecordingReporter()
    pretrain(SAMPLE, args, models_dir=tmp_path / "fresh", resume=True, reporter=reporter)
    assert reporter.said("No checkpoint to resume")
    assert len(list((tmp_path / "fresh").glob("pretrained-mini-sample_reviews-*/rs_pretrain.json"))) == 1

    # A default name holds the start time; rerunning the same command with --resume finds the checkpoint anyway.
    models = tmp_path / "models"
    with pytest.raises(Interrupted, match="step 1 of 2"):
        pretrain(SAMPLE, args, models_dir=models, on_step=_interrupt_at(1))
    (interrupted,) = models.glob("pretrained-mini-sample_reviews-*")
    with pytest.raises(RsError, match="An interrupted run left a checkpoint .*--resume.*--force"):
        pretrain(SAMPLE, args, models_dir=models)
    result = pretrain(SAMPLE, args, models_dir=models, resume=True)
    assert result.output_dir == interrupted and result.steps == 2
    assert (interrupted / "rs_pretrain.json").exists() and len(list(models.iterdir())) == 1


def test_existing_output_needs_resume_or_force(tmp_path):
    (tmp_path / "out").mkdir()
    reporter = RecordingReporter()
    with pytest.raises(RsError, match="out already exists. Pass --name with another name, or --force"):
        pretrain(SAMPLE, PretrainArguments(**QUICK), output_dir=tmp_path / "out", reporter=reporter)
    with pytest.raises(RsError, match="out already exists and holds no checkpoint to resume"):
        pretrain(SAMPLE, PretrainArguments(**QUICK), output_dir=tmp_path / "out", resume=True, reporter=reporter)
    assert not reporter.said("No checkpoint to resume")  # the error comes first


@pytest.mark.slow
def test_ctrl_c_twice_in_the_first_step_leaves_nothing(tmp_path, monkeypatch):
    _ctrl_c_during_step(monkeypatch, call=1, presses=2)
    with pytest.raises(Interrupted, match="Stopped before the first checkpoint was saved: nothing to resume"):
        pretrain(SAMPLE, PretrainArguments(**QUICK), output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_time_budget_is_planned_from_the_speed_after_the_first_steps():
    from review_sentiment.pretrain import CALIBRATION_STEPS, steps_for_budget

    assert CALIBRATION_STEPS == (10, 60, 300)
    # 10 slow first steps (0.8 s: one-time costs), then 0.6 s per step to step 60, then 0.5 s, for an hour
    assert steps_for_budget(10, 8.0, 0, 0.0, 3600) == 10 + int(3592 / 0.8)  # provisional: 4,500 steps
    assert steps_for_budget(60, 8.0 + 50 * 0.6, 10, 8.0, 3600) == 60 + int((3600 - 38.0) / 0.6)  # 5,996
    total = steps_for_budget(300, 38.0 + 240 * 0.5, 60, 38.0, 3600)
    assert total == 300 + int((3600 - 158.0) / 0.5)  # 7,184 steps: the hour at the speed of steps 61-300
    assert steps_for_budget(60, 3700.0, 10, 8.0, 3600) == 61  # over budget already: one more step at least


def test_a_checkpoint_without_calibration_step_resumes_with_the_speed_since_step_10():
    from review_sentiment.pretrain import upgraded_state

    # the previous format kept only the training time at step 10, the first calibration
    assert upgraded_state({"calibrations": 1, "calibration_seconds": 8.0})["calibration_step"] == 10
    assert upgraded_state({"calibrations": 0, "calibration_seconds": 0.0})["calibration_step"] == 0
    assert upgraded_state({"calibrations": 2, "calibration_step": 60})["calibration_step"] == 60


def test_arguments_are_validated():
    with pytest.raises(RsError, match="size must be one of"):
        PretrainArguments(size="huge")
    with pytest.raises(RsError, match="precision must be one of auto, fp32, bf16"):
        PretrainArguments(precision="fp16")  # no loss scaling in rs pretrain


def test_offline_alias_says_how_to_get_the_discriminator_and_generator(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RsError) as error:
        pretrain(SAMPLE, PretrainArguments(**QUICK), base_name="koelectra-small", output_dir="unused")
    assert "hf download monologg/koelectra-small-v3-discriminator" in str(error.value)
    assert "monologg/koelectra-small-v3-generator --local-dir koelectra-small-v3-discriminator/generator" in str(
        error.value
    )
