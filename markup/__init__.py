"""Gemini's Markdown turned into what each channel needs: WhatsApp formatting, text to speak."""
