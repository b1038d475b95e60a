"""A local HTTP server on 127.0.0.1 serving fixture files to download tests (this machine has no internet)."""

import http.server
import threading

import pytest


class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        # a path ending in truncated.bin announces more bytes than it sends: an interrupted download
        self.send_header("Content-Length", str(len(body) * (2 if self.path.endswith("truncated.bin") else 1)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    """``(base_url, files)``: put bytes in ``files["/name"]`` to serve them at ``base_url + "/name"``."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler.files
    httpd.shutdown()
    thread.join()
