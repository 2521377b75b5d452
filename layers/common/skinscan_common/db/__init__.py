"""Database: models, engine factory, sessions, migrations."""

from skinscan_common.db.engine import (
    create_db_engine,
    dispose_engines,
    get_engine,
    normalise_url,
    session_factory,
    session_scope,
)
from skinscan_common.db.migrate import alembic_config, migrate
from skinscan_common.db.models import (
    Base,
    BatchItem,
    BatchJob,
    LoginAttempt,
    Prediction,
    RefreshToken,
    UploadEvent,
    User,
    utcnow,
)

__all__ = [
    "Base",
    "BatchItem",
    "BatchJob",
    "LoginAttempt",
    "Prediction",
    "RefreshToken",
    "UploadEvent",
    "User",
    "alembic_config",
    "create_db_engine",
    "dispose_engines",
    "get_engine",
    "migrate",
    "normalise_url",
    "session_factory",
    "session_scope",
    "utcnow",
]
