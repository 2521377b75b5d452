"""HTTP API Lambda authorizer (deployed from this folder; handler app.handler)."""
