"""The database password from RDS's managed secret: read when connecting, re-read on rotation.

PostgreSQL here is a throwaway server that checks passwords (scram-sha-256), as RDS does; the
machine's own server trusts every login and could not tell a stale password from a fresh one.
Secrets Manager is moto's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import boto3
import pg8000.native
import pytest
from moto import mock_aws
from sqlalchemy import text
from sqlalchemy.engine import make_url

from skinscan_common.config import Settings
from skinscan_common.db import create_db_engine
from skinscan_common.db.credentials import credentials_for, is_auth_failure
from tests.support import postgres

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def password_server() -> Iterator[str]:
    with postgres.throwaway_server(password="admin secret") as url:
        yield url


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def _admin(server: str) -> pg8000.native.Connection:
    url = make_url(server)
    return pg8000.native.Connection(
        "postgres", host=url.host, port=url.port, password=url.password, database="postgres"
    )


def _settings(server: str, secret_arn: str, database: str = "postgres") -> Settings:
    url = make_url(server)
    return Settings(
        db_host=url.host,
        db_port=url.port,
        db_name=database,
        db_secret_arn=secret_arn,
        db_sslmode="disable",
        aws_region=REGION,
    )


def test_settings_read_no_secret(aws: None) -> None:
    """The authorizer may not read the database secret: building the settings must not try."""
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:rds!db-missing"
    settings = Settings(db_host="db.internal", db_secret_arn=arn, aws_region=REGION)
    url = make_url(settings.database_url)
    assert (url.host, url.username, url.password) == ("db.internal", None, None)
    assert url.query["sslmode"] == "require"


def test_a_rotated_password_is_read_again_without_a_restart(
    password_server: str, aws: None
) -> None:
    role = f"app_{uuid.uuid4().hex[:8]}"
    admin = _admin(password_server)
    try:
        admin.run(f"CREATE ROLE {role} LOGIN PASSWORD 'first password'")
        secrets = boto3.client("secretsmanager", region_name=REGION)
        arn = secrets.create_secret(
            Name=f"rds!{role}",
            SecretString=json.dumps({"username": role, "password": "first password"}),
        )["ARN"]
        engine = create_db_engine(_settings(password_server, arn).database_url)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT current_user")).scalar() == role

            # RDS rotates: the role's password and the secret change together.
            admin.run(f"ALTER ROLE {role} PASSWORD 'second password'")
            secrets.put_secret_value(
                SecretId=arn,
                SecretString=json.dumps({"username": role, "password": "second password"}),
            )
            engine.pool.dispose()  # what pool_recycle does every 5 minutes
            with engine.connect() as conn:
                assert conn.execute(text("SELECT current_user")).scalar() == role
        finally:
            engine.dispose()
            credentials_for(arn, REGION).forget()
    finally:
        admin.run(f"DROP ROLE IF EXISTS {role}")
        admin.close()


def test_a_wrong_password_still_fails_clearly(password_server: str, aws: None) -> None:
    """A secret that is simply wrong is read again once, then the refusal is raised."""
    role = f"app_{uuid.uuid4().hex[:8]}"
    admin = _admin(password_server)
    try:
        admin.run(f"CREATE ROLE {role} LOGIN PASSWORD 'the real one'")
        arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=f"rds!{role}", SecretString=json.dumps({"username": role, "password": "nope"})
        )["ARN"]
        engine = create_db_engine(_settings(password_server, arn).database_url)
        try:
            with pytest.raises(Exception) as raised:
                engine.connect()
            assert is_auth_failure(raised.value.orig)  # type: ignore[attr-defined]
        finally:
            engine.dispose()
    finally:
        admin.run(f"DROP ROLE IF EXISTS {role}")
        admin.close()
