"""Build the PostgreSQL URL in AWS from the RDS endpoint and its managed secret."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL

if TYPE_CHECKING:
    from skinscan_common.config import Settings


@lru_cache(maxsize=4)
def _credentials(secret_arn: str, region: str) -> tuple[str, str]:
    import boto3

    value = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=secret_arn)
    data = json.loads(value["SecretString"])
    return data["username"], data["password"]


def postgres_url_from_parts(settings: Settings) -> str:
    """``postgresql+pg8000://user:pass@host:port/name[?sslmode=require]``."""
    user, password = "postgres", None
    if settings.db_secret_arn:
        user, password = _credentials(settings.db_secret_arn, settings.aws_region)
    query = {"sslmode": settings.db_sslmode} if settings.db_sslmode != "disable" else {}
    url = URL.create(
        "postgresql+pg8000",
        username=user,
        password=password,
        host=settings.db_host,
        port=settings.db_port,
        database=settings.db_name,
        query=query,
    )
    return url.render_as_string(hide_password=False)
