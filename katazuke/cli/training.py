"""Shared pieces of the torch CLIs (``katazuke train detector|classifier``, ``eval detector``)."""
from __future__ import annotations

import argparse
import os


def passive_openmp() -> None:
    """Make OpenMP threads wait passively (call before torch is imported).

    Spinning OpenMP threads stall torch on a shared CPU (the sim, the bridge and the nodes
    run beside it); an explicit ``OMP_WAIT_POLICY`` in the environment wins.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def add_training_arguments(parser: argparse.ArgumentParser, *, data_help: str, out_help: str,
                           epochs: int, epochs_help: str, batch_size: int, batch_help: str,
                           lr: float, config_name: str) -> None:
    """The options every ``katazuke train`` command shares (defaults per command).

    Args:
        parser: the subcommand's parser.
        data_help, out_help: help of ``--data`` and ``--out``.
        epochs, batch_size, lr: defaults of ``--epochs``, ``--batch-size``, ``--lr``.
        epochs_help, batch_help: help of ``--epochs`` and ``--batch-size``.
        config_name: the config dataclass ``--config`` YAML holds.
    """
    parser.add_argument("--data", required=True, help=data_help)
    parser.add_argument("--out", required=True, help=out_help)
    parser.add_argument("--epochs", type=int, default=epochs, help=epochs_help)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of init/shuffle/augmentation and of the validation split")
    parser.add_argument("--batch-size", type=int, default=batch_size, help=batch_help)
    parser.add_argument("--lr", type=float, default=lr, help="peak learning rate")
    parser.add_argument("--time-budget-min", type=float, default=0.0,
                        help="stop after this many minutes of steps (0 = no limit)")
    parser.add_argument("--max-images", type=int, default=0, help="use at most N images (0 = all)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--config", default=None,
                        help=f"YAML of {config_name} fields (command-line flags win)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/checkpoint.pt (same data and settings)")
