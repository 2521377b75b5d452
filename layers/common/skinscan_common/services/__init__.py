"""Domain code behind the functions' thin handlers."""
