"""Settings read from ``SKINSCAN_*`` environment variables, in this one place."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of SkinScan; see the configuration table in README.md."""

    model_config = SettingsConfigDict(env_prefix="SKINSCAN_", extra="ignore")

    # Storage of rows and objects.
    data_dir: Path = Field(default_factory=lambda: Path.cwd() / ".skinscan")
    database_url: str = ""  # empty: built from db_host (AWS), else sqlite file in data_dir
    db_host: str | None = None  # AWS: RDS endpoint; credentials from db_secret_arn
    db_port: int = 5432
    db_name: str = "skinscan"
    db_secret_arn: str | None = None  # RDS-managed secret: {"username": ..., "password": ...}
    db_sslmode: Literal["disable", "require"] = "require"  # used with db_host
    storage_backend: Literal["local", "s3"] = "local"
    bucket: str = "skinscan-local"
    s3_endpoint_url: str | None = None  # moto / localstack
    aws_region: str = "eu-west-1"

    # Tokens.
    jwt_secret: SecretStr | None = None  # empty: read from jwt_secret_arn or a local file
    jwt_secret_arn: str | None = None  # Secrets Manager secret id (AWS)
    jwt_issuer: str = "skinscan"
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    # A session (a chain of rotated refresh tokens) ends this long after its sign-in, however
    # often it is refreshed: a stolen refresh token cannot be kept alive for ever.
    session_max_age_s: int = 90 * 24 * 3600
    guest_token_ttl_s: int = 24 * 3600

    # Limits.
    max_upload_bytes: int = 10 * 1024 * 1024
    max_body_bytes: int = 64 * 1024
    password_min_length: int = 10
    password_max_length: int = 256
    login_max_failures: int = 5
    login_window_s: int = 900
    login_lockout_s: int = 900
    # Sign-ups per client address (every attempt counts): mass sign-ups, and probing which
    # addresses have an account ("email taken"), slow down to this many an hour.
    register_max_per_client: int = Field(default=20, ge=1)
    register_window_s: int = Field(default=3600, ge=1)
    # Upload forms (each a pending prediction) per client address, signed in or not.
    upload_forms_per_client: int = Field(default=120, ge=1)
    upload_forms_window_s: int = Field(default=3600, ge=1)

    # Model endpoint.
    endpoint_mode: Literal["local", "sagemaker"] = "local"
    endpoint_name: str = "skinscan-model"
    # Wait for the SageMaker endpoint's answer, without retry: below the calling function's
    # timeout (predict 29 s; the template raises it for on_upload and batch_worker).
    endpoint_timeout_s: float = Field(default=20.0, gt=0)
    model_path: Path = Path("models")
    device: str = "cpu"
    preload_model: bool = True  # skinscan serve: load and warm the model at start-up

    # Uploads and batch jobs (S3 events, SQS chunks; infra/template.yaml sets the queue).
    upload_claim_s: int = 120  # an upload event's claim outlives on_upload's 90 s timeout
    batch_queue_url: str = ""  # SQS chunk queue (batch_start sends, batch_worker receives)
    batch_chunk_size: int = Field(default=256, ge=1, le=10_000)  # images per chunk message
    batch_invoke_size: int = Field(default=64, ge=1, le=256)  # object keys per endpoint call
    batch_max_receives: int = 3  # the chunk queue's maxReceiveCount: the last try fails items
    batch_lease_s: int = Field(default=960, ge=0)  # a chunk's lease outlives the worker's 900 s
    # A job with images pending and no progress for this long was given up by its workers
    # (its chunk dead-lettered): housekeeping fails those images and writes its results.
    batch_stall_s: int = Field(default=6 * 3600, ge=60)
    housekeeping_interval_s: int = Field(default=3600, ge=0)  # local stack; 0: only at start-up

    # Local stack.
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = ""  # empty: http://{host}:{port}
    url_ttl_s: int = 300
    log_level: str = "INFO"
    service_name: str = "skinscan"
    stage: str = "local"

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url and self.db_host:
            from skinscan_common.db.url import postgres_url_from_parts

            self.database_url = postgres_url_from_parts(self)
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'skinscan.db').as_posix()}"
        if not self.public_base_url:
            self.public_base_url = f"http://{self.host}:{self.port}"
        self.public_base_url = self.public_base_url.rstrip("/")
        return self

    @property
    def objects_dir(self) -> Path:
        """Folder of the local object store."""
        return self.data_dir / "objects"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests call ``get_settings.cache_clear()``)."""
    return Settings()
