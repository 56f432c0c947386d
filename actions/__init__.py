"""What the assistant does for the business beyond words: its HTTP tools, and choices as buttons."""
