"""A page that answers while the server starts: loading torch, torchvision and gradio takes seconds.

`python app.py serve` opens this standard-library HTTP server on the app's address first, so a browser (or a
health check) gets an answer at once: "Guidance Studio is starting…". The page polls `/` with a small script
and reloads as soon as the real app answers in its place, also across the moment between this server closing
and the app binding the port (a failed poll is simply retried). Standard library only: it must run before
the heavy imports.
"""

from __future__ import annotations

import html
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

MARKER = "guidance-studio-starting"  # the real app's page never contains it

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Guidance Studio: starting</title>
<style>body{{font-family:sans-serif;margin:4em auto;max-width:40em;color:#333}}</style></head>
<body id="{marker}"><h2>Guidance Studio is starting…</h2><p>{message}</p>
<p><small>This page reloads by itself when the app is ready.</small></p>
<script>
(function poll() {{
  fetch("/", {{cache: "no-store"}}).then((r) => r.text()).then((t) => {{
    if (t.indexOf("{marker}") < 0) {{ location.reload(); }} else {{ setTimeout(poll, 1000); }}
  }}).catch(() => setTimeout(poll, 500));
}})();
</script></body></html>
"""


class StartingPage:
    """Serve `PAGE` on `(host, port)` in a daemon thread until :meth:`close`; `message` says what is happening."""

    def __init__(self, host: str, port: int, message: str) -> None:
        self.message = message
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = PAGE.format(marker=MARKER, message=html.escape(page.message)).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("starting page: " + format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="starting-page", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop answering and free the port (the app binds it next)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def open_starting_page(host: str, port: int, message: str) -> StartingPage | None:
    """A :class:`StartingPage`, or None when the port cannot be bound (the app will then say why)."""
    try:
        return StartingPage(host, port, message)
    except OSError as exc:
        log.warning("no starting page on %s:%d (%s)", host, port, exc)
        return None


__all__ = ["MARKER", "StartingPage", "open_starting_page"]
