"""Reading the JSON log lines the shared logger writes, in tests."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from skinscan_common.observability import logger

#: The keys Powertools' inject_lambda_context adds to every line of an invocation.
LAMBDA_KEYS = (
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "correlation_id",
)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """The JSON log lines written to ``buffer``."""
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


@pytest.fixture
def forget_invocation_keys() -> Iterator[None]:
    """inject_lambda_context keeps its keys on the shared logger (Lambda overwrites them on
    each invocation); tests that follow must not inherit them."""
    yield
    logger.remove_keys(LAMBDA_KEYS)
