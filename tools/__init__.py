"""Developer tools: `make chat` (the playground) and `make simulate`; not part of the image."""
