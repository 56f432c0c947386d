"""Opening hours: when the business is open, in its own time zone, and saying so."""
