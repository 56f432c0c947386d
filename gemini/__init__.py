"""Talking to Gemini through google-genai: the SDK set up, requests built, responses read."""
