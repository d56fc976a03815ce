import json

import pytest
import torch

from review_sentiment.checkpoints import (
    argument_differences,
    delete_checkpoint,
    join_optimizer_state,
    recover_checkpoint,
    split_optimizer_state,
    staging_dir,
    write_atomically,
)


def test_write_atomically_swaps_in_on_success_and_keeps_the_previous_one_on_ctrl_c(tmp_path):
    folder = tmp_path / "run.rs-checkpoint"
    with write_atomically(folder) as staging:
        assert staging == tmp_path / ".run.rs-checkpoint.partial" and not any(staging.iterdir())
        (staging / "a.txt").write_text("first")
    assert (folder / "a.txt").read_text() == "first"

    with pytest.raises(KeyboardInterrupt), write_atomically(folder) as staging:
        (staging / "a.txt").write_text("second")
        raise KeyboardInterrupt
    assert (folder / "a.txt").read_text() == "first"
    assert not staging_dir(folder, "partial").exists()

    with write_atomically(folder) as staging:
        (staging / "a.txt").write_text("third")
    assert (folder / "a.txt").read_text() == "third"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run.rs-checkpoint"]


def test_recover_finishes_a_cut_short_swap_and_delete_removes_every_sibling(tmp_path):
    folder = tmp_path / "run"
    assert not recover_checkpoint(folder)
    staging_dir(folder, "old").mkdir()  # a crash after moving the old one aside, before moving the new one in
    assert recover_checkpoint(folder) and folder.is_dir() and not staging_dir(folder, "old").exists()

    staging_dir(folder, "old").mkdir()
    staging_dir(folder, "partial").mkdir()
    delete_checkpoint(folder)
    assert list(tmp_path.iterdir()) == []


def test_optimizer_state_round_trips_through_tensors_and_json():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()

    tensors, other = split_optimizer_state(optimizer.state_dict())
    assert set(tensors) == {f"optimizer.{i}.{key}" for i in (0, 1) for key in ("step", "exp_avg", "exp_avg_sq")}
    other = json.loads(json.dumps(other))  # as it comes back from training.json

    fresh = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.5)
    fresh.load_state_dict(join_optimizer_state({**tensors, "rng.torch": torch.get_rng_state()}, other))
    restored, original = fresh.state_dict(), optimizer.state_dict()
    assert restored["param_groups"] == original["param_groups"]  # betas a tuple again
    for index, values in original["state"].items():
        for key, value in values.items():
            assert torch.equal(restored["state"][index][key], value)


def test_argument_differences_name_the_options():
    old, new = {"learning_rate": 0.1, "seed": 1, "gone": None}, {"learning_rate": 0.2, "seed": 1, "epochs": 3}
    names = {"learning_rate": "--learning-rate", "epochs": "--epochs"}
    assert argument_differences(old, new, names) == [
        "--learning-rate was 0.1 there, 0.2 now",
        "--epochs was None there, 3 now",
    ]
    shown = lambda value: "not given" if value is None else str(value)  # noqa: E731
    assert argument_differences(old, new, names, shown)[1] == "--epochs was not given there, 3 now"
