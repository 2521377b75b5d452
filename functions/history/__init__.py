"""History: list, read and delete a user's predictions."""
