import re

import pytest

from polychrome.config import config_to_dict, load_config, save_config


def test_yaml_then_sets_override_defaults(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("model: {name: eccv16_regress, width: 0.5}\nloss: {kind: mse}\noptim: {lr: 1.0e-3}\n")
    config = load_config(path, ["model.width=0.25", "trainer.max_steps=7", "optim.betas=[0.5, 0.9]", "data.val=null"])
    assert config.model.name == "eccv16_regress" and config.model.options == {"width": 0.25}
    assert config.loss.kind == "mse" and config.optim.lr == 1e-3 and config.optim.betas == (0.5, 0.9)
    assert config.trainer.max_steps == 7 and config.data.val is None
    assert config.data.size == 32  # untouched default


def test_saved_config_rebuilds_the_same_config(tmp_path):
    config = load_config(None, ["model.name=fusion", "model.width=0.5", "data.train=folder:x"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    assert load_config(base=config_to_dict(config)) == config


def test_unknown_keys_name_the_valid_ones():
    with pytest.raises(
        ValueError,
        match=re.escape("unknown config key trainer.maxsteps; valid keys in trainer.: ")
        + ".*"
        + re.escape("max_steps"),
    ):
        load_config(None, ["trainer.maxsteps=5"])
    with pytest.raises(ValueError, match="key=value"):
        load_config(None, ["trainer.max_steps"])
    with pytest.raises(ValueError, match="loss kind"):
        load_config(None, ["loss.kind=gan"])


def test_values_are_checked_against_their_types():
    assert load_config(None, ["optim.lr=1e-3"]).optim.lr == 1e-3  # YAML reads 1e-3 as a string
    assert load_config(None, ["data.size=64"]).data.size == 64
    with pytest.raises(ValueError, match=re.escape("data.size must be int, got 'big'")):
        load_config(None, ["data.size=big"])
    with pytest.raises(ValueError, match=re.escape("data.batch_size must be int, got 1.5")):
        load_config(None, ["data.batch_size=1.5"])
    with pytest.raises(ValueError, match=re.escape("trainer.max_steps cannot be null")):
        load_config(None, ["trainer.max_steps=null"])


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("constant", [1.0, 1.0, 1.0, 1.0]),
        ("step", [1.0, 1.0, 1 / 3, 0.1]),  # Zhang's: x1/3 at the first milestone, x1/10 at the second
    ],
)
def test_learning_rate_schedules(schedule, expected):
    import torch

    from polychrome.task import adam_with_schedule

    config = load_config(
        None,
        [
            f"optim.schedule={schedule}",
            "optim.milestones=[200,375]",
            "optim.milestone_factors=[0.3333333,0.1]",
            "trainer.max_steps=450",
            "optim.lr=3e-5",
        ],
    )
    scheduler = adam_with_schedule(torch.nn.Linear(2, 2), config)["lr_scheduler"]["scheduler"]
    factors = [scheduler.lr_lambdas[0](step) for step in (0, 199, 200, 400)]
    assert factors == pytest.approx(expected, rel=1e-5)


def test_step_milestones_must_pair_with_factors():
    import torch

    from polychrome.task import adam_with_schedule

    config = load_config(None, ["optim.schedule=step", "optim.milestones=[200]"])
    with pytest.raises(ValueError, match="pair up"):
        adam_with_schedule(torch.nn.Linear(2, 2), config)
