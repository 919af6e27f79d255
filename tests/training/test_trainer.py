import json
import math

import pytest
import torch

from fastsim.training import TrainConfig, Trainer, load_checkpoint
from tests.training import fit_helpers as toy


def initial_loss() -> float:
    with torch.no_grad():
        return toy.mse(toy.make_model().eval()(toy.INPUTS), toy.TARGETS).item()


def test_trainer_learns_a_regression_and_writes_its_files(tmp_path):
    result = toy.trainer(tmp_path, epochs=40, period_epochs=38).fit(toy.batches)
    assert result.history[-1]["mse"] < initial_loss() / 10
    assert result.best_metric == min(r["mae"] for r in result.history)
    best = load_checkpoint(result.best_path)
    assert best["epoch"] == result.best_epoch and best["extra"] == {"model_kind": "toy"}
    model = toy.make_model(seed=1).eval()
    model.load_state_dict(best["model"])  # the EMA weights of the best epoch reproduce its metric
    with torch.no_grad():
        assert toy.validate(model)["mae"] == pytest.approx(result.best_metric, rel=1e-6)
    assert json.loads(result.history_path.read_text()) == result.history
    last = load_checkpoint(result.last_path)
    assert last["epoch"] == 39 and last["config"]["epochs"] == 40 and set(last["ema"]) == {"num_updates", "shadow"}
    assert last["ema"]["num_updates"] == 40 * 8


class Killed(RuntimeError):
    pass


def test_resume_after_a_kill_reaches_bit_identical_weights(tmp_path):
    reference = toy.trainer(tmp_path / "full")
    reference.fit(toy.batches)

    def dies_at_epoch_5(epoch, generator):
        if epoch == 5:
            raise Killed
        return toy.batches(epoch, generator)

    with pytest.raises(Killed):
        toy.trainer(tmp_path / "killed").fit(dies_at_epoch_5)
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["epoch"] == 4
    resumed = toy.trainer(tmp_path / "killed")  # fresh process state: new model, optimizer, EMA
    result = resumed.fit(toy.batches, resume=True)

    for name, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    for name, value in reference.ema.shadow.items():
        assert torch.equal(value, resumed.ema.shadow[name]), name
    assert [r["mae"] for r in result.history] == [r["mae"] for r in reference.history]
    assert result.best_epoch == reference.best_epoch


def test_resume_rejects_changed_settings_and_missing_runs(tmp_path):
    toy.trainer(tmp_path, epochs=2).fit(toy.batches)
    with pytest.raises(ValueError, match="different settings.*'lr'"):
        toy.trainer(tmp_path, epochs=4, lr=5e-3).fit(toy.batches, resume=True)
    with pytest.raises(FileExistsError, match="last.pt exists"):
        toy.trainer(tmp_path, epochs=2).fit(toy.batches)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        toy.trainer(tmp_path / "none").fit(toy.batches, resume=True)
    more = toy.trainer(tmp_path, epochs=4).fit(toy.batches, resume=True)  # extending the run is allowed
    assert [r["epoch"] for r in more.history] == [0, 1, 2, 3]


def trainer_with_extra(out, **extra) -> Trainer:
    return Trainer(toy.make_model(), toy.config(out, epochs=3), loss=toy.loss, validate=toy.validate, extra=extra)


def test_resume_rejects_another_model_or_other_data(tmp_path):
    trainer_with_extra(tmp_path, model_kind="toy", data_digest="sha256:a").fit(toy.batches)
    with pytest.raises(ValueError, match="model or data differ.*extra: data_digest"):
        trainer_with_extra(tmp_path, model_kind="toy", data_digest="sha256:b").fit(toy.batches, resume=True)
    with pytest.raises(ValueError, match="model or data differ.*extra: data_digest, model_kind\\)$"):
        trainer_with_extra(tmp_path, model_kind="other").fit(toy.batches, resume=True)


def test_resume_names_what_an_older_checkpoint_does_not_record(tmp_path):
    trainer_with_extra(tmp_path, model_kind="toy").fit(toy.batches)  # a run that stored no data digest
    with pytest.raises(ValueError, match="extra: data_digest\\); the checkpoint does not record data_digest"):
        trainer_with_extra(tmp_path, model_kind="toy", data_digest="sha256:a").fit(toy.batches, resume=True)


def test_without_validate_the_training_loss_selects_and_ema_off_saves_raw_weights(tmp_path):
    config = toy.config(tmp_path, epochs=3, ema=False)
    trainer = Trainer(toy.make_model(), config, loss=toy.loss)
    result = trainer.fit(toy.batches)
    assert result.best_metric == min(r["train_loss"] for r in result.history)
    assert load_checkpoint(result.last_path)["ema"] is None


def test_learning_rate_follows_the_schedule(tmp_path):
    config = toy.config(tmp_path, epochs=6, warmup_epochs=1, period_epochs=2)
    result = Trainer(toy.make_model(), config, loss=toy.loss).fit(toy.batches)
    assert [r["lr"] for r in result.history] == [config.lr_schedule()(e) for e in range(6)]


def test_hostile_settings_and_callbacks(tmp_path):
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="schedule must be one of"):
        TrainConfig(epochs=1, schedule="linear")
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        TrainConfig(epochs=1, lr=math.nan)
    with pytest.raises(ValueError, match="grad_clip"):
        TrainConfig(epochs=1, grad_clip=-1.0)
    with pytest.raises(ValueError, match="no parameters"):
        Trainer(torch.nn.ReLU(), toy.config(tmp_path), loss=toy.loss)
    with pytest.raises(ValueError, match="yielded no batches"):
        toy.trainer(tmp_path / "a").fit(lambda epoch, generator: iter(()))
    with pytest.raises(ValueError, match="not finite"):
        Trainer(toy.make_model(), toy.config(tmp_path / "b"), loss=lambda m, b: m(b[0]).sum() * math.nan).fit(
            toy.batches
        )
    with pytest.raises(ValueError, match="dict with the key 'mae'"):
        Trainer(toy.make_model(), toy.config(tmp_path / "c"), loss=toy.loss, validate=lambda m: {"rmse": 1.0}).fit(
            toy.batches
        )


def test_grad_clip_bounds_the_gradient_norm_the_optimizer_sees(tmp_path):
    def gradient_norms(**fields) -> list[float]:
        trainer = toy.trainer(tmp_path / str(len(fields)), epochs=2, **fields)
        norms = []

        def record(optimizer, args, kwargs):
            norms.append(torch.cat([p.grad.flatten() for p in trainer.model.parameters()]).norm().item())

        trainer.optimizer.register_step_pre_hook(record)
        trainer.fit(toy.batches)
        return norms

    assert min(gradient_norms()) > 1e-2
    assert max(gradient_norms(grad_clip=1e-3)) == pytest.approx(1e-3, rel=1e-4)


@pytest.mark.cuda
def test_amp_on_cuda_learns_and_checkpoints_the_scaler(tmp_path):
    model = toy.make_model().cuda()

    def loss(module, batch):
        return toy.loss(module, tuple(t.cuda() for t in batch))

    def validate(module):
        return {"mae": (module(toy.INPUTS.cuda()) - toy.TARGETS.cuda()).abs().mean().item()}

    config = toy.config(tmp_path, epochs=30, period_epochs=28)
    result = Trainer(model, config, loss=loss, validate=validate).fit(toy.batches)
    assert result.best_metric < 0.2
    assert load_checkpoint(result.last_path)["scaler"]["scale"] > 0


def test_extra_must_be_plain_data(tmp_path):
    with pytest.raises(TypeError, match=r"got Linear at extra\['model'\]"):
        Trainer(toy.make_model(), toy.config(tmp_path), loss=toy.loss, extra={"model": torch.nn.Linear(1, 1)})


def test_amp_on_cpu_trains_in_full_precision_with_a_note(tmp_path, capsys):
    trainer = toy.trainer(tmp_path, epochs=1, quiet=False)
    trainer.fit(toy.batches)
    assert not trainer.amp and "amp applies on CUDA only" in capsys.readouterr().err
