"""run.py's flags become one typed TrainConfig, and the resume command comes from the parser."""

import dataclasses
import shlex
from pathlib import Path

from runtime.errors import SetupError
from training.config import MAX_SEED, TrainConfig, build_parser, parse_config

# Every flag away from its default, so that a flag the resume command forgot would show.
UNUSUAL = [
    "-d", "my data", "-e", "7", "-b", "3", "-p", "48", "-l", "0.0003", "-v", "30",
    "-o", "out dir", "--seed", "5", "--device", "cpu", "--workers", "1", "--augment",
    "--loss", "bce+dice", "--num-filters", "8", "--kernel", "3", "--se", "CSE",
    "--dropout", "0.1", "--precision", "fp32", "--no-channels-last", "--compile",
    "--cache-limit", "2.5", "--save-every", "2", "--tensorboard", "--overwrite",
]  # fmt: skip


def test_every_flag_is_a_field_of_the_config():
    dests = {a.dest for a in build_parser()._actions if a.dest != "help"}
    assert dests == {f.name for f in dataclasses.fields(TrainConfig)}


def test_the_resume_command_carries_every_flag_but_overwrite():
    config = parse_config(UNUSUAL)
    command = config.resume_command(Path("out dir/interrupted.pt"), epochs=4)
    assert command.startswith("python run.py ")
    argv = shlex.split(command)[2:]
    resumed = parse_config(argv)
    expected = dataclasses.replace(config, load="out dir/interrupted.pt", epochs=4, overwrite=False)
    assert resumed == expected


def test_defaults_are_written_once_in_the_parser():
    config = parse_config(["-d", "DATA"])
    assert config.epochs == 1 and config.im_size == 256 and config.output_path == "./checkpoints"
    assert config.channels_last is None and not config.augment and config.num_filters is None


def test_seeds_numpy_and_torch_both_take_are_accepted_and_others_refused():
    for seed in (0, MAX_SEED):
        parse_config(["-d", "DATA", "--seed", str(seed)]).check()
    for seed in (-1, MAX_SEED + 1, 10**19):
        config = parse_config(["-d", "DATA", "--seed", str(seed)])
        try:
            config.check()
        except SetupError as err:
            assert str(err) == f"--seed must be a whole number from 0 to {MAX_SEED}, got {seed}."
        else:
            raise AssertionError(f"--seed {seed} was accepted")
