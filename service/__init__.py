"""The service as the web process runs it: its lifespan, opening and closing what it uses."""
