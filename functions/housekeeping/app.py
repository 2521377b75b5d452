"""Scheduled Lambda ``housekeeping``: every hour, what no request cleans up by itself.

Ended sign-in sessions and spent login counts are purged, predictions whose photo never came
are deleted, and batch jobs whose last chunk was given up are finished with their results
(``skinscan_common.services.housekeeping`` says what and why). The event (an EventBridge
schedule's) carries nothing it needs. A failed step fails the invocation, so that it shows in
the function's error metric; the others have still run, and the next hour tries again.
"""

from __future__ import annotations

from typing import Any

from skinscan_common.config import get_settings
from skinscan_common.db import get_engine
from skinscan_common.deps import object_store
from skinscan_common.observability import logger
from skinscan_common.services import housekeeping


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any] | None, context: Any) -> dict[str, int]:
    """Run every housekeeping step once; what each removed or finished."""
    settings = get_settings()
    report = housekeeping.run(get_engine(settings.database_url), object_store(settings), settings)
    return report.as_dict()
