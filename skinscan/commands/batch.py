"""``skinscan batch DIR_OR_MANIFEST``: a batch job on this machine, resumable.

The same job as in the cloud (``skinscan_common.services.batch``): the images are split into
chunks that go through an in-process queue to the local engine, and ``results.csv`` (the
columns of ``skinscan predict --csv``) is written into the folder scored (a manifest's folder).
Progress lives in ``.skinscan-batch/state.db`` in that folder and is committed after every
engine batch, so a run that is killed and started again skips every image already scored
(images that were missing are tried again). A folder's heatmaps and overlays
(``*.heatmap.png``, ``*.overlay.png``, the ``--heatmaps`` folder) are outputs, never scored.
A manifest lists one image path per line, relative to its folder or absolute; a line that is
not CSV (a stray quote) is an error row of its own.
Exit status: 0 all scored, 1 some rows are errors, 2 nothing to do, no model or bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import queue
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from skinscan.commands.predict import IMAGE_SUFFIXES
from skinscan_common.db import create_db_engine, migrate, session_scope
from skinscan_common.services import batch
from skinscan_common.services.batch_scoring import score_objects

if TYPE_CHECKING:  # torch is imported only when there is something to score
    from skinscan_engine.serving import ScoringService

STATE_DIR = ".skinscan-batch"
JOB_ID = "local"


class BatchInputError(ValueError):
    """Nothing to score, or a source that is neither a folder nor a manifest."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        metavar="DIR_OR_MANIFEST",
        type=Path,
        help="a folder (searched recursively) or a manifest (one path a line)",
    )
    parser.add_argument(
        "--model",
        metavar="PATH",
        help="model folder, weights or card (default: $SKINSCAN_MODEL_PATH or models/)",
    )
    parser.add_argument("--chunk-size", type=int, default=64, help="images per queued chunk")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=16,
        help="images per engine batch (progress is saved after each)",
    )
    parser.add_argument(
        "--heatmaps",
        metavar="DIR",
        type=Path,
        help="write IMAGE.heatmap.png and IMAGE.overlay.png under DIR",
    )
    parser.add_argument("--retries", type=int, default=2, help="retries of a failing chunk")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


class FolderBlobs:
    """Files under a folder as the batch code's ``Blobs`` (absolute keys stay absolute)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def put(self, key: str, data: bytes, content_type: str = "") -> None:
        """Write atomically: a reader sees the old file or the new one, never half of one."""
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


#: What ``--heatmaps`` writes: never an image to score, wherever it lies.
OUTPUT_SUFFIXES = (".heatmap.png", ".overlay.png")


@dataclass
class Sources:
    """The folder scored, its image keys (relative to it, or absolute outside it) and the
    manifest lines refused (key -> reason)."""

    folder: Path
    keys: list[str]
    refused: dict[str, str] = field(default_factory=dict)


def _is_image(path: Path, folder: Path, outputs: Path | None) -> bool:
    """An image to score: not our state (hidden folders), heatmaps nor overlays."""
    return (
        path.suffix.lower() in IMAGE_SUFFIXES
        and not path.name.lower().endswith(OUTPUT_SUFFIXES)
        and not any(part.startswith(".") for part in path.relative_to(folder).parts[:-1])
        and (outputs is None or outputs not in path.parents)
        and path.is_file()
    )


def collect(source: Path, outputs: Path | None = None) -> Sources:
    """What ``source`` asks to score; ``outputs`` (the heatmaps folder) is left out of a folder."""
    if source.is_dir():
        folder = source.resolve()
        # Left out when it is a folder of its own inside; beside the photos (or above them)
        # the PNGs' suffixes tell them apart.
        outputs = outputs.resolve() if outputs else None
        outputs = outputs if outputs is not None and folder in outputs.parents else None
        keys = sorted(
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if _is_image(p, folder, outputs)
        )
        if not keys:
            raise BatchInputError(f"no images in {source}")
        return Sources(folder, keys)
    if not source.is_file():
        raise BatchInputError(f"{source} is neither a folder nor a manifest file")
    folder = source.resolve().parent
    try:
        manifest = batch.parse_manifest(source.read_bytes())
    except (batch.BatchError, OSError) as exc:
        raise BatchInputError(f"{source}: {exc}") from exc
    keys, refused = [], {}
    for line in manifest.keys:
        if line in manifest.refused:  # not a path: kept as written, with the reason
            keys.append(line)
            refused[line] = manifest.refused[line]
            continue
        path = Path(os.path.normpath(folder / line))  # links stay links: names as listed
        keys.append(path.relative_to(folder).as_posix() if folder in path.parents else str(path))
    return Sources(folder, list(dict.fromkeys(keys)), refused)


@contextlib.contextmanager
def _only_run(state: Path) -> Iterator[None]:
    """One run per folder at a time (an advisory lock on the state folder)."""
    state.mkdir(parents=True, exist_ok=True)
    with (state / "lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BatchInputError(f"another skinscan batch is running on {state.parent}") from exc
        yield


@dataclass
class Options:
    model: str = "models"
    chunk_size: int = 64
    batch_size: int = 16
    heatmaps: Path | None = None
    retries: int = 2
    device: str | None = None
    precision: str = "auto"
    progress: bool = True


@dataclass
class Summary:
    folder: Path
    total: int
    scored: int = 0  # by this run
    skipped: int = 0
    scored_before: int = 0  # by earlier runs (the job's own count when this one started)
    errors: int = 0
    failed_chunks: list[int] = field(default_factory=list)

    @property
    def results(self) -> Path:
        return self.folder / "results.csv"


def _service(options: Options) -> ScoringService:
    from skinscan_engine.engine import Engine, EngineConfig
    from skinscan_engine.serving import BatchSettings, ScoringService

    size = max(1, options.batch_size)
    config = EngineConfig.from_env(
        precision=options.precision,
        max_batch_size=size,
        **({"device": options.device} if options.device else {}),
    )
    engine = Engine.from_path(options.model, config)
    return ScoringService(engine, BatchSettings(max_batch_size=size, max_wait_ms=5.0))


def score_folder(
    source: Path, options: Options, on_chunk: Callable[[batch.ChunkReport], None] | None = None
) -> Summary:
    """Run (or resume) the job of ``source``; ``on_chunk`` is called after each chunk."""
    sources = collect(source, options.heatmaps)
    folder = sources.folder
    state = folder / STATE_DIR
    blobs = FolderBlobs(folder)
    heatmaps = f"{options.heatmaps.resolve()}/" if options.heatmaps else None
    layout = batch.JobLayout(str(folder / "results.csv"), f"{state}/chunks/", heatmaps)
    summary = Summary(folder=folder, total=len(sources.keys))
    with _only_run(state):
        url = f"sqlite:///{(state / 'state.db').as_posix()}"
        migrate(url)
        db = create_db_engine(url)
        try:
            with session_scope(db) as session:
                chunks = batch.start_job(
                    session,
                    JOB_ID,
                    str(source),
                    sources.keys,
                    max(1, options.chunk_size),
                    check_keys=False,
                    refused=sources.refused,
                )
                job = session.get(batch.BatchJob, JOB_ID)
                finished_before = job.done + job.failed if job else 0
                summary.scored_before = job.done if job else 0
                summary.total = job.total if job else summary.total
            if chunks:
                _run_queue(db, chunks, blobs, layout, options, summary, finished_before, on_chunk)
            else:
                batch.finalize(db, JOB_ID, blobs, layout)
            with session_scope(db) as session:
                job = session.get(batch.BatchJob, JOB_ID)
                summary.errors = job.failed if job else 0
        finally:
            db.dispose()
    return summary


def _scored(summary: Summary, bar: Any, count: int) -> None:
    """Images answered (a chunk that fails later still scored these)."""
    summary.scored += count
    bar.update(count)


def _run_queue(
    db: Engine,
    chunks: list[batch.ChunkMessage],
    blobs: FolderBlobs,
    layout: batch.JobLayout,
    options: Options,
    summary: Summary,
    finished_before: int,
    on_chunk: Callable[[batch.ChunkReport], None] | None,
) -> None:
    from tqdm import tqdm

    service = _service(options)
    pending: queue.Queue[batch.ChunkMessage] = queue.Queue()
    for chunk in chunks:
        pending.put(chunk)
    tries: dict[int, int] = {}
    bar = tqdm(
        total=summary.total,
        initial=finished_before,
        unit="img",
        disable=not options.progress,
        file=sys.stderr,
    )
    try:
        while not pending.empty():
            message = pending.get()
            tries[message.chunk] = tries.get(message.chunk, 0) + 1
            try:
                report = batch.run_chunk(
                    db,
                    message,
                    score=lambda items: score_objects(blobs, items, service.answer_many),
                    out=blobs,
                    layout=layout,
                    invoke_size=max(1, options.batch_size),
                    last_try=tries[message.chunk] > options.retries,
                    # One process runs the job: a lease would only hold back the images of a
                    # run that was killed, when it is started again.
                    lease_s=0,
                    on_scored=lambda count: _scored(summary, bar, count),
                )
            except Exception as exc:
                if tries[message.chunk] > options.retries:
                    summary.failed_chunks.append(message.chunk)
                    print(f"skinscan batch: chunk {message.chunk} failed: {exc}", file=sys.stderr)
                else:
                    pending.put(message)  # retried after the others, like SQS would
                continue
            summary.skipped += report.skipped
            if on_chunk is not None:
                on_chunk(report)
    finally:
        bar.close()
        service.close()


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        model=args.model or os.environ.get("SKINSCAN_MODEL_PATH", "models"),
        chunk_size=args.chunk_size,
        batch_size=args.batch_size,
        heatmaps=args.heatmaps,
        retries=max(0, args.retries),
        device=args.device,
        precision=args.precision,
        progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    from skinscan_common.observability import logging_to

    with logging_to(sys.stderr):  # stdout stays free of log lines, as predict's is
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        summary = score_folder(args.source, options_from(args))
    except BatchInputError as exc:
        print(f"skinscan batch: {' '.join(str(exc).splitlines())}", file=sys.stderr)  # one line
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"skinscan batch: cannot load the model: {exc}", file=sys.stderr)
        return 2
    print(
        f"skinscan batch: {summary.total} images, scored {summary.scored} now, "
        f"{summary.scored_before} scored before; {summary.errors} errors; "
        f"results: {summary.results}",
        file=sys.stderr,
    )
    return 1 if summary.errors or summary.failed_chunks else 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m skinscan.commands.batch``)."""
    parser = argparse.ArgumentParser(prog="skinscan batch", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
