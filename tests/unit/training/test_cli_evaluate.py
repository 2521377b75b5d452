"""`skinscan evaluate`'s flags match what the evaluation accepts."""

from __future__ import annotations

import argparse

from skinscan_training.cli_evaluate import add_arguments
from skinscan_training.evaluate import PARTS


def test_the_part_choices_are_the_evaluations_parts() -> None:
    # The CLI spells the parts out so that `--help` needs no torch; this keeps the copy honest.
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    part = next(a for a in parser._actions if a.dest == "part")
    assert tuple(part.choices) == tuple(PARTS)
