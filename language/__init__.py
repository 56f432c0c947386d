"""Fixed replies in the user's language: `choice` picks the language, `replies` gives the text."""
