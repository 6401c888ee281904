"""The WSGI app and its command line.

Stdlib only: tomllib for the config, wsgiref for the server. The server is
threaded so that a slow client does not block health checks.
"""

import argparse
import json
import os
import re
import socketserver
import sys
import threading
import tomllib
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

from . import __version__

DEFAULTS = {
    "listen": "0.0.0.0",
    "port": 8080,
    "greeting": "Hello from hello-web",
    "state-dir": "/var/lib/hello-web",
}


def load_config(path):
    config = dict(DEFAULTS)
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            config.update(tomllib.load(f))
    return config


def count_request(state_dir):
    """Count requests in the state dir; a read-only state dir is not fatal."""
    path = os.path.join(state_dir, "requests")
    try:
        with open(path, "a+", encoding="ascii") as f:
            f.seek(0)
            n = int(f.read().strip() or 0) + 1
            f.seek(0)
            f.truncate()
            f.write(str(n))
        return n
    except OSError:
        return None


SHARED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
SHARED_MAX = 1 << 20


def shared_file(environ, name):
    """PUT stores a file in the app's directory on the cluster's shared file
    system (DEBSHIP_SHARED_DIR, set by debship cluster apply), GET reads it:
    the same file on every node."""
    method = environ.get("REQUEST_METHOD", "GET")
    data = b""
    if method == "PUT":
        # The body is read whatever the answer: on a kept-alive connection
        # an unread body would be taken for the next request.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        while length > 0:
            chunk = environ["wsgi.input"].read(min(length, 65536))
            if not chunk:
                break
            length -= len(chunk)
            if len(data) <= SHARED_MAX:
                data += chunk
        if len(data) > SHARED_MAX:
            return "413 Payload Too Large", b"at most 1 MiB\n"
    shared = os.environ.get("DEBSHIP_SHARED_DIR")
    if not shared:
        return "503 Service Unavailable", b"no shared directory: DEBSHIP_SHARED_DIR is not set\n"
    if not SHARED_NAME.match(name):
        return "400 Bad Request", b"a file name is letters, digits, '.', '_' and '-'\n"
    path = os.path.join(shared, name)
    if method == "PUT":
        tmp = os.path.join(shared, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return "201 Created", b"stored\n"
    if method == "GET":
        try:
            with open(path, "rb") as f:
                return "200 OK", f.read()
        except FileNotFoundError:
            return "404 Not Found", b"not found\n"
    return "405 Method Not Allowed", b"GET or PUT\n"


def make_app(config):
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path.startswith("/shared/"):
            status, body = shared_file(environ, path[len("/shared/"):])
            start_response(status, [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/healthz":
            body = f"ok {__version__}\n".encode()
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/":
            n = count_request(config["state-dir"])
            body = json.dumps(
                {"greeting": config["greeting"], "version": __version__, "requests": n, "host": os.uname().nodename}
            ).encode() + b"\n"
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        body = b"not found\n"
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's listen backlog is 5: a burst of new connections while
    # the node is busy (an install) overflows it, and each SYN it drops
    # costs the client 1 s (gunicorn's default backlog is 2048).
    request_queue_size = 128


# How long an idle keep-alive connection stays open (gunicorn's default is 2 s,
# nginx's 75 s); a client that sends on it just as it closes sees a reset.
KEEPALIVE_SECONDS = 5


class KeepAliveServerHandler(ServerHandler):
    http_version = "1.1"


class QuietHandler(WSGIRequestHandler):
    """wsgiref's handler with HTTP/1.1 keep-alive, as the servers of real apps
    (gunicorn, uvicorn) do: browsers, API clients and proxies reuse connections."""

    protocol_version = "HTTP/1.1"
    timeout = KEEPALIVE_SECONDS
    # wsgiref writes the headers and the body apart: with Nagle's algorithm
    # the body of every answer but a connection's first would wait for the
    # client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def handle(self):
        self.close_connection = True
        self.handle_one()
        while not self.close_connection:
            self.handle_one()

    def handle_one(self):
        self.close_connection = True
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (TimeoutError, ConnectionError):
            return
        if not self.raw_requestline:
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        # The app never reads a body: a request with one ends the connection,
        # so that the body is not read as the next request.
        if self.headers.get("Content-Length", "0") != "0" or self.headers.get("Transfer-Encoding"):
            self.close_connection = True
        handler = KeepAliveServerHandler(self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=False)
        handler.request_handler = self
        handler.run(self.server.get_app())
        self.wfile.flush()

    def log_message(self, format, *args):  # one line per request on stderr, journald adds the time
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="hello-web", description="Example WSGI site packaged by debship.")
    parser.add_argument("--config", default="/etc/hello-web/hello-web.toml", help="TOML config file")
    parser.add_argument("--port", type=int, help="port (overrides the config)")
    parser.add_argument("--version", action="version", version=f"hello-web {__version__}")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.port:
        config["port"] = args.port
    server = make_server(config["listen"], int(config["port"]), make_app(config),
                         server_class=ThreadingWSGIServer, handler_class=QuietHandler)
    print(f"hello-web {__version__} listening on {config['listen']}:{config['port']}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
