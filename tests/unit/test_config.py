"""Settings come from SKINSCAN_* variables, with embedded defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from skinscan_common.config import Settings, get_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SKINSCAN_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.data_dir == tmp_path / ".skinscan"
    assert s.database_url == f"sqlite:///{(tmp_path / '.skinscan' / 'skinscan.db').as_posix()}"
    assert s.storage_backend == "local" and s.endpoint_mode == "local"
    assert s.access_token_ttl_s == 900
    assert s.max_upload_bytes == 10 * 1024 * 1024
    assert s.public_base_url == "http://127.0.0.1:8000"


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKINSCAN_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("SKINSCAN_BUCKET", "b")
    monkeypatch.setenv("SKINSCAN_PORT", "9000")
    monkeypatch.setenv("SKINSCAN_DATABASE_URL", "postgresql+pg8000://u@h/db")
    get_settings.cache_clear()
    s = get_settings()
    assert (s.storage_backend, s.bucket, s.port) == ("s3", "b", 9000)
    assert s.database_url == "postgresql+pg8000://u@h/db"
    assert get_settings() is s


def test_invalid_backend_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKINSCAN_STORAGE_BACKEND", "ftp")
    with pytest.raises(ValueError):
        Settings()


def test_secret_not_in_repr() -> None:
    s = Settings(jwt_secret="super-secret-value-0123456789abcdef")
    assert "super-secret-value" not in repr(s)
