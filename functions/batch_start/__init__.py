"""S3 batch/{job}/manifest.csv -> a job row and chunk messages on SQS."""
