"""Build the PostgreSQL URL in AWS from the RDS endpoint, naming its managed secret."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import URL

if TYPE_CHECKING:
    from skinscan_common.config import Settings

# Query parameters of our own, taken out of the URL by the engine factory (engine.py): the
# secret that holds the user and password, read when connecting (db/credentials.py), never here.
SECRET_PARAM = "credentials_secret"
REGION_PARAM = "credentials_region"


def postgres_url_from_parts(settings: Settings) -> str:
    """``postgresql+pg8000://host:port/name?sslmode=require&credentials_secret=ARN&...``.

    Nothing is read from AWS here, so a function that never touches the database (the
    authorizer) needs no right to the database secret.
    """
    query: dict[str, str] = {}
    if settings.db_sslmode != "disable":
        query["sslmode"] = settings.db_sslmode
    if settings.db_secret_arn:
        query[SECRET_PARAM] = settings.db_secret_arn
        query[REGION_PARAM] = settings.aws_region
    url = URL.create(
        "postgresql+pg8000",
        username=None if settings.db_secret_arn else "postgres",
        host=settings.db_host,
        port=settings.db_port,
        database=settings.db_name,
        query=query,
    )
    return url.render_as_string(hide_password=False)
