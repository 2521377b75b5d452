"""The batch chunk queue: SQS in AWS (``skinscan batch`` uses an in-process queue instead)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from skinscan_common.services.batch import ChunkMessage

SQS_BATCH = 10  # SendMessageBatch takes at most 10 entries


class QueueError(RuntimeError):
    """Some chunk messages could not be sent."""


class SqsChunkQueue:
    """Sends chunk messages to one SQS queue, ten per call."""

    def __init__(self, queue_url: str, client: Any = None, region: str | None = None) -> None:
        if not queue_url:
            raise QueueError("no chunk queue configured: set SKINSCAN_BATCH_QUEUE_URL")
        import boto3

        self.queue_url = queue_url
        self.client = client or boto3.client("sqs", region_name=region)

    def send(self, messages: Sequence[ChunkMessage]) -> int:
        """Send every message; :class:`QueueError` naming the chunks SQS refused."""
        refused: list[str] = []
        for start in range(0, len(messages), SQS_BATCH):
            part = messages[start : start + SQS_BATCH]
            entries = [{"Id": str(i), "MessageBody": m.to_json()} for i, m in enumerate(part)]
            answer = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            refused += [
                f"chunk {part[int(f['Id'])].chunk}: {f.get('Message') or f.get('Code')}"
                for f in answer.get("Failed", [])
            ]
        if refused:
            raise QueueError(f"SQS refused {len(refused)} chunk messages: {'; '.join(refused[:5])}")
        return len(messages)
