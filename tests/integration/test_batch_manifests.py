"""Batch manifests as people write them: bad lines, keys too long to store, users' private
keys, and big manifests written in few round trips (both databases unless noted)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select, update

from skinscan_common.config import Settings
from skinscan_common.db import BatchItem, BatchJob, get_engine, session_scope
from skinscan_common.services import batch
from skinscan_common.services.batch_scoring import parse_items, score_objects

MANIFEST = "batch/job/manifest.csv"


def _start(settings: Settings, manifest: batch.Manifest, **kw: Any) -> list[batch.ChunkMessage]:
    with session_scope(get_engine(settings.database_url)) as session:
        return batch.start_job(
            session, "job", MANIFEST, manifest.keys, 64, refused=manifest.refused, **kw
        )


def _items(settings: Settings) -> list[BatchItem]:
    with session_scope(get_engine(settings.database_url)) as session:
        items = list(session.scalars(select(BatchItem).order_by(BatchItem.position)))
        session.expunge_all()
        return items


# -- parsing --------------------------------------------------------------------------------------


def test_a_stray_quote_spoils_only_its_own_line() -> None:
    data = b'images/1.jpg\n"images/2.jpg\nimages/3.jpg\r\nimages/4.jpg\rimages/5.jpg,x\n'
    manifest = batch.parse_manifest(data)
    assert manifest.keys == [f"images/{i}.jpg" for i in (1,)] + [
        '"images/2.jpg',
        "images/3.jpg",
        "images/4.jpg",
        "images/5.jpg",
    ]
    assert manifest.refused == {
        '"images/2.jpg': "manifest line 2: not a CSV line (unexpected end of data)"
    }
    assert not any("\n" in key or "\r" in key for key in manifest.keys)


def test_a_line_over_csvs_field_limit_is_refused_not_raised() -> None:
    manifest = batch.parse_manifest(b"images/1.jpg\n" + b"x" * 200_000 + b"\nimages/3.jpg\n")
    assert manifest.keys[0] == "images/1.jpg" and manifest.keys[2] == "images/3.jpg"
    assert "field larger than field limit" in manifest.refused[manifest.keys[1]]


# -- keys that can't be stored ------------------------------------------------------------------


def test_an_unstorable_line_rejects_only_itself(settings: Settings) -> None:
    """Over 1,024 bytes (ASCII or not), a NUL, a stray quote: each is a rejected row, cut
    short, with its reason; the job starts and its other images are queued."""
    long_ascii = "images/" + "a" * 1093
    long_cjk = "images/" + "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(993))
    lines = [
        "images/0.jpg",
        long_ascii,
        long_ascii + "b",  # starts as the one before: still a row of its own
        long_cjk,
        "images/\x002.jpg",
        '"images/3.jpg',
        "images/4.jpg",
    ]
    manifest = batch.parse_manifest("\n".join(lines).encode())
    assert [c.chunk for c in _start(settings, manifest)] == [0]
    items = _items(settings)
    assert [i.status for i in items] == ["pending"] + ["rejected"] * 5 + ["pending"]
    assert items[0].key == "images/0.jpg" and items[6].key == "images/4.jpg"
    assert all(len(i.key.encode()) <= batch.MAX_KEY_BYTES for i in items)
    assert items[1].key.startswith("images/aaa") and items[1].key != items[2].key
    assert items[1].error == "the key is 1100 bytes long; object keys are at most 1024"
    assert "2986 bytes long" in (items[3].error or "")
    assert items[4].error == "the key contains a NUL character" and "\x00" not in items[4].key
    assert items[5].key == '"images/3.jpg' and "line 6: not a CSV line" in (items[5].error or "")
    with session_scope(get_engine(settings.database_url)) as session:
        job = session.get(BatchJob, "job")
        assert job is not None and (job.total, job.failed) == (7, 5)
    assert _start(settings, manifest) == [batch.ChunkMessage("job", 0)]  # a re-run, unchanged


# -- users' private keys -----------------------------------------------------------------------


def test_users_photos_and_results_are_refused(settings: Settings) -> None:
    keys = ["uploads/u1/p.jpg", "results/u1/p.heatmap.png", "uploads-copy/p.jpg", "images/a.jpg"]
    _start(settings, batch.Manifest(keys))
    items = _items(settings)
    assert [i.status for i in items] == ["rejected", "rejected", "pending", "pending"]
    assert "may not read users' photos or results" in (items[0].error or "")
    # The local command scores folders, where uploads/ is just a folder name.
    with session_scope(get_engine(settings.database_url)) as session:
        batch.start_job(session, "local", "list.csv", keys[:1], 8, check_keys=False)
        local = session.scalars(select(BatchItem.status).where(BatchItem.job_id == "local"))
        assert list(local) == ["pending"]


def test_the_endpoint_refuses_private_keys_and_writes_only_under_batch() -> None:
    """Defence in depth: the container's batch route, whoever calls it."""
    store: dict[str, bytes] = {"uploads/u1/p.jpg": b"JPEG", "images/a.jpg": b"JPEG"}

    class Blobs:
        def get(self, key: str) -> bytes:
            return store[key]

        def put(self, key: str, data: bytes, content_type: str = "") -> None:
            store[key] = data

    items = parse_items(
        [
            {"key": "uploads/u1/p.jpg", "heatmap_key": "batch/j/heatmaps/p.heatmap.png"},
            {"key": "images/a.jpg", "heatmap_key": "uploads/u1/p.jpg"},
        ]
    )
    png = b"\x89PNG\r\n\x1a\n"
    answer = {
        "verdict": "benign",
        "p_malignant": 0.1,
        "confidence": 0.9,
        "top_class": "nv",
        "probabilities": {"nv": 0.9},
        "ood_score": 1.0,
        "model_version": "t",
        "heatmap_png": png,
        "overlay_png": png,
    }
    answers = score_objects(Blobs(), items, lambda images: [answer for _ in images])
    assert answers[0]["status"] == "rejected" and "users' photos" in answers[0]["error"]
    assert answers[1]["status"] == "done" and answers[1]["heatmap_key"] is None
    assert store["uploads/u1/p.jpg"] == b"JPEG"  # not overwritten by a heatmap


# -- big manifests ------------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_big_manifest_is_not_inserted_row_by_row(settings: Settings) -> None:
    db = get_engine(settings.database_url)
    statements = {"execute": 0, "executemany_rows": 0}

    @event.listens_for(db, "before_cursor_execute")
    def count(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        statements["executemany_rows" if many else "execute"] += len(params) if many else 1

    try:
        _start(settings, batch.Manifest([f"images/{i}.jpg" for i in range(3000)]))
    finally:
        event.remove(db, "before_cursor_execute", count)
    assert statements["executemany_rows"] == 0 and statements["execute"] < 20
    assert len(_items(settings)) == 3000


def test_kept_results_survive_a_changed_manifest_exactly(settings: Settings) -> None:
    """Rows are rewritten in bulk (COPY on PostgreSQL): odd characters and NULLs intact."""
    keys = ["a\tb.jpg", "back\\slash\\N.jpg", 'quote"d,.jpg', "new\nline.jpg", "plain.jpg"]
    _start(settings, batch.Manifest(keys), check_keys=False)
    values = {"verdict": "benign", "p_malignant": 0.123456789012345, "confidence": None}
    with session_scope(get_engine(settings.database_url)) as session:
        session.execute(
            update(BatchItem)
            .where(BatchItem.key != "plain.jpg")
            .values(status="done", error="", top_class="\\N", attempts=2, **values)
        )
    _start(settings, batch.Manifest([*keys[:4], "other.jpg"]), check_keys=False)
    items = _items(settings)
    assert [i.key for i in items] == [*keys[:4], "other.jpg"]
    for item in items[:4]:
        assert (item.status, item.verdict, item.p_malignant, item.confidence) == (
            "done",
            "benign",
            0.123456789012345,
            None,
        )
        assert (item.error, item.top_class, item.attempts, item.model_version) == (
            "",
            "\\N",
            2,
            None,
        )
    assert (items[4].status, items[4].error, items[4].verdict) == ("pending", None, None)
