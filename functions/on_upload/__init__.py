"""S3 ObjectCreated on uploads/ -> score the photo through the endpoint, once."""
