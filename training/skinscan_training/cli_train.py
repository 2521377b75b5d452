"""``skinscan train``: train on HAM10000, then calibrate and export the model."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from .augment import MAX_STRENGTH, AugmentConfig, check_strength, with_strength
from .config import TrainConfig
from .mixup import check_alpha
from .optim import OPTIMIZERS

DEFAULTS = TrainConfig(data="", out="")


def _checked(check: Callable[[float], float]) -> Callable[[str], float]:
    """A flag parser for a number that ``check`` validates (ValueError if unusable)."""

    def parse(text: str) -> float:
        # argparse reports an ArgumentTypeError as a usage error naming the flag.
        try:
            return check(float(text))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    parser.add_argument("--data", required=True, help="HAM10000 folder (metadata CSV + images/)")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, logs, split)")
    parser.add_argument(
        "--epochs", type=int, help=f"default {d.epochs}; with --resume, the run's own"
    )
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--weight-decay", type=float, default=d.weight_decay)
    parser.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default=d.optimizer,
        help="adamw, or sgd with Nesterov momentum (give it its own --lr and --weight-decay)",
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=d.label_smoothing,
        help="share of each target spread over all classes (0 = one-hot targets)",
    )
    parser.add_argument("--width", type=int, default=d.width, help="model input width")
    parser.add_argument("--height", type=int, default=d.height, help="model input height")
    parser.add_argument("--samples-per-epoch", type=int, default=d.samples_per_epoch)
    parser.add_argument("--balance-power", type=float, default=d.balance_power)
    parser.add_argument(
        "--seed", type=int, default=d.seed, help="initialisation, batches and augmentation"
    )
    parser.add_argument(
        "--split-seed",
        type=int,
        default=d.split_seed,
        help="the lesion-grouped split's seed (keep 0 to compare with the shipped models)",
    )
    parser.add_argument("--device", default=d.device, help="auto, cpu or cuda")
    parser.add_argument("--no-bf16", action="store_true", help="train in fp32")
    parser.add_argument("--cache-dir", default="", help="where decoded images are cached")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images")
    parser.add_argument(
        "--init", default="", help="start from the weights of this shipped model (warm start)"
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        default=d.time_budget,
        help="seconds the training may take; the epochs are fitted to it after the first two",
    )
    parser.add_argument(
        "--average-last",
        type=int,
        default=d.average_last,
        help="export the mean of the last N epochs' weights instead of the best epoch",
    )
    parser.add_argument(
        "--teacher",
        dest="teachers",
        action="append",
        default=[],
        help="distil from this shipped model (trained on the same split): its probabilities "
        "are mixed into the training targets; repeat for an ensemble (their mean)",
    )
    parser.add_argument(
        "--distill-weight",
        type=float,
        default=d.distill_weight,
        help="share of the teacher's probabilities in the targets (0-1)",
    )
    parser.add_argument(
        "--binary-weight",
        type=float,
        default=d.binary_weight,
        help="add a malignant-vs-benign loss term with this weight to the seven-class loss",
    )
    parser.add_argument(
        "--colour-constancy",
        action="store_true",
        help="re-light every image to the training part's mean light (shades of grey)",
    )
    parser.add_argument(
        "--mixup",
        type=_checked(check_alpha),
        default=d.mixup,
        help="blend training images in pairs with weights from Beta(ALPHA, ALPHA), their "
        "targets alike (0 = off)",
    )
    parser.add_argument(
        "--augment-strength",
        type=_checked(check_strength),
        default=1.0,
        help="scale the small rotations, scale, shift and colour jitter (0 = flips and "
        f"right-angle turns only, 1 = the shipped models', at most {MAX_STRENGTH})",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from RUN_DIR/last.pt with the run's own settings (--data, --cache-dir, "
        "--device, --epochs and --average-last may change; another setting is refused)",
    )
    parser.add_argument("--no-export", action="store_true", help="skip calibration and export")
    parser.add_argument("--version", default="", help="model version for the exported card")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's configuration from the parsed flags."""
    return TrainConfig(
        data=args.data,
        out=args.out,
        epochs=args.epochs or (0 if args.resume else DEFAULTS.epochs),
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        optimizer=args.optimizer,
        label_smoothing=args.label_smoothing,
        width=args.width,
        height=args.height,
        samples_per_epoch=args.samples_per_epoch,
        balance_power=args.balance_power,
        seed=args.seed,
        split_seed=args.split_seed,
        device=args.device,
        bf16=not args.no_bf16,
        cache_dir=args.cache_dir,
        limit=args.limit,
        init=args.init,
        time_budget=args.time_budget,
        average_last=args.average_last,
        teachers=args.teachers,
        distill_weight=args.distill_weight,
        binary_weight=args.binary_weight,
        colour_constancy=args.colour_constancy,
        mixup=args.mixup,
        augment=asdict(with_strength(AugmentConfig(), args.augment_strength)),
    )


def check_inputs(args: argparse.Namespace) -> None:
    """Fail on a wrong --data, --out, --init or --teacher before the run folder is made."""
    from skinscan_engine.model_card import resolve_paths

    from .checkpoints import check_new_run_dir
    from .split import read_ham

    read_ham(Path(args.data))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if args.resume and not (out / "last.pt").is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {out / 'last.pt'}")
    if not args.resume:
        check_new_run_dir(out)
    for model in ([args.init] if args.init else []) + list(args.teachers):
        resolve_paths(Path(model))


def run(args: argparse.Namespace) -> int:
    from .train import train

    check_inputs(args)
    chosen = train(config_from_args(args), resume=args.resume)
    print(f"checkpoint to export: {chosen}")
    if not args.no_export:
        from .export import finalize_run

        # This command's --data and --cache-dir: best.pt may date from before a resume that
        # was given the data's new place.
        stem = finalize_run(
            Path(args.out),
            version=args.version or None,
            checkpoint=chosen,
            data_dir=args.data,
            cache_dir=args.cache_dir,
        )
        print(f"exported model: {stem}.safetensors and {stem}.json")
    return 0
