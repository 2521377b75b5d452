"""SQS chunk -> scored through the endpoint; the last chunk writes results.csv."""
