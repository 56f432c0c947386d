"""Meta's webhook: the events it posts, parsed into types (the signature check is whatsapp.py's)."""
