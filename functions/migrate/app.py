"""One-shot migration Lambda: ``alembic upgrade head`` against the stack's database.

Invoked once after every deploy (docs/deploy.md)::

    aws lambda invoke --function-name "$(stack output MigrateFunctionName)" \
        --payload '{"revision": "head"}' --cli-binary-format raw-in-base64-out out.json

No CloudFormation custom resource: a failed migration then fails loudly in the operator's
terminal instead of wedging a stack update. Event (all optional): ``{"revision": "head"}`` to
upgrade, ``{"action": "current"}`` to report the revision only. The database URL comes from the
shared settings (built from the RDS-managed secret in AWS), like every other function's.
"""

from __future__ import annotations

from typing import Any

from alembic.runtime.migration import MigrationContext

from skinscan_common.config import get_settings
from skinscan_common.db import get_engine, migrate
from skinscan_common.observability import logger, with_lambda_context


@with_lambda_context()  # invoked by an operator: no API Gateway request to correlate with
def handler(event: dict[str, Any] | None, context: Any = None) -> dict[str, Any]:
    """Upgrade (by default) and report the database's current revision."""
    event = event or {}
    url = get_settings().database_url
    if event.get("action", "upgrade") == "upgrade":
        revision = str(event.get("revision", "head"))
        logger.info("alembic upgrade", extra={"revision": revision})
        migrate(url, revision)
    with get_engine(url).connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return {"status": "ok", "revision": current}
