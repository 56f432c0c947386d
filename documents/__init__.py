"""The business's documents in Gemini File Search: the store, its documents, a folder synced."""
