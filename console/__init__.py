"""The operator console: server-rendered pages under /console (see `console.app.add_console`)."""
