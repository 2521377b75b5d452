"""Presigned direct uploads: POST /v1/uploads."""
