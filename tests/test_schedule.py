"""--lr-schedule: the rates it gives, and resuming in the middle of one exactly."""

import signal

import pytest
from helpers import TINY, load_checkpoint, same_weights

import run
import trainer
from training.schedule import SCHEDULES, WARMUP_SHARE, LrPlan, plan_schedule


def rates(schedule: str, epochs: int = 10, steps: int = 20) -> list[float]:
    plan = LrPlan(schedule, 0.01, 0, epochs)
    return [plan.lr(e, s, steps) for e in range(1, epochs + 1) for s in range(1, steps + 1)]


def test_constant_keeps_the_peak():
    assert set(rates("constant")) == {0.01}


@pytest.mark.parametrize("schedule", ["poly", "cosine"])
def test_decaying_schedules_warm_up_to_the_peak_then_fall_towards_zero(schedule):
    lr = rates(schedule)  # 200 steps: warm-up over the first 10
    warmup = round(WARMUP_SHARE * len(lr))
    assert lr[0] == pytest.approx(0.01 / warmup)
    assert lr[: warmup + 1] == sorted(lr[: warmup + 1])
    assert max(lr) == pytest.approx(0.01)
    decay = lr[warmup:]
    assert decay == sorted(decay, reverse=True)
    assert 0 < lr[-1] < 0.01 * 0.05


def test_poly_and_cosine_have_their_shapes():
    poly, cosine = rates("poly", 1, 1000), rates("cosine", 1, 1000)
    # Halfway through the decay: poly (1 - 0.5)^0.9, cosine exactly a half.
    middle = round(1000 * (WARMUP_SHARE + (1 - WARMUP_SHARE) / 2))
    assert poly[middle] == pytest.approx(0.01 * 0.5**0.9, rel=1e-2)
    assert cosine[middle] == pytest.approx(0.005, rel=1e-2)


def test_a_resume_continues_the_stored_plan_only_when_it_ends_where_the_plan_ends(capsys):
    stored = LrPlan("cosine", 0.01, 0, 10).to_dict()
    assert plan_schedule("cosine", 0.01, 4, 6, stored) == LrPlan(**stored)
    assert capsys.readouterr().out == ""
    for changed in (("cosine", 0.01, 4, 8), ("poly", 0.01, 4, 6), ("cosine", 0.02, 4, 6)):
        assert plan_schedule(*changed, stored) == LrPlan(*changed[:3], 4 + changed[3])
        assert "A new" in capsys.readouterr().out


def test_metrics_and_checkpoints_record_the_rate_and_the_plan(tmp_path, make_data):
    out = tmp_path / "out"
    args = ["-d", str(make_data()), "-o", str(out), *TINY, "-e", "3", "-l", "0.01"]
    assert run.main([*args, "--lr-schedule", "cosine"]) == 0
    checkpoint = load_checkpoint(out / "last.pt")
    assert checkpoint["lr_plan"] == LrPlan("cosine", 0.01, 0, 3).to_dict()
    lr = [row["lr"] for row in checkpoint["history"]]
    assert lr == sorted(lr, reverse=True) and lr[-1] < 0.01 * 0.1  # 6 steps in all


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_resuming_mid_schedule_is_exact(schedule, tmp_path, make_data, monkeypatch, capsys):
    """Stopped in the middle of epoch 2 of 3, resumed with the printed command: the same
    weights, bit for bit, as the run that was never stopped."""
    data = make_data(n=12)  # 9 training windows: three steps per epoch
    common = [*TINY, "-e", "3", "-l", "0.01", "--lr-schedule", schedule, "--augment"]
    assert run.main(["-d", str(data), "-o", str(tmp_path / "straight"), *common]) == 0

    steps = 0
    train_step = trainer.Trainer.train_step

    def stop_after_five(self, *args):
        nonlocal steps
        steps += 1
        if steps == 5:
            self.stopping.signal = signal.SIGTERM
        return train_step(self, *args)

    monkeypatch.setattr(trainer.Trainer, "train_step", stop_after_five)
    out = tmp_path / "stopped"
    assert run.main(["-d", str(data), "-o", str(out), *common]) == 143
    monkeypatch.setattr(trainer.Trainer, "train_step", train_step)
    interrupted = load_checkpoint(out / "interrupted.pt")
    assert (interrupted["epoch"], interrupted["progress"]["step"]) == (1, 2)

    command = capsys.readouterr().err.split("Resume with:")[1].split()
    assert command[command.index("--lr-schedule") + 1] == schedule
    assert run.main(command[2:]) == 0
    straight, resumed = (
        load_checkpoint(tmp_path / "straight" / "last.pt"),
        load_checkpoint(out / "last.pt"),
    )
    assert same_weights(straight, resumed)
    assert [r["lr"] for r in straight["history"]] == [r["lr"] for r in resumed["history"]]
