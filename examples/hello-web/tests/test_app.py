import io
import os
import tempfile
import unittest
from unittest import mock

from hello_web.server import make_app


def call(app, path, method="GET", data=b""):
    status = {}

    def start_response(s, headers):
        status["s"] = s

    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "CONTENT_LENGTH": str(len(data)), "wsgi.input": io.BytesIO(data)}
    body = b"".join(app(environ, start_response))
    return status["s"], body


class AppTest(unittest.TestCase):
    def test_healthz(self):
        app = make_app({"greeting": "hi", "state-dir": "/nonexistent"})
        status, body = call(app, "/healthz")
        self.assertEqual(status, "200 OK")
        self.assertTrue(body.startswith(b"ok "))

    def test_not_found(self):
        app = make_app({"greeting": "hi", "state-dir": "/nonexistent"})
        status, _ = call(app, "/nope")
        self.assertEqual(status, "404 Not Found")

    def test_shared_dir(self):
        app = make_app({"greeting": "hi", "state-dir": "/nonexistent"})
        with tempfile.TemporaryDirectory() as d, mock.patch.dict(os.environ, {"DEBSHIP_SHARED_DIR": d}):
            self.assertEqual(call(app, "/shared/a.txt", "PUT", b"hello")[0], "201 Created")
            self.assertEqual(call(app, "/shared/a.txt"), ("200 OK", b"hello"))
            self.assertEqual(call(app, "/shared/..")[0], "400 Bad Request")
            self.assertEqual(call(app, "/shared/missing")[0], "404 Not Found")
        with mock.patch.dict(os.environ, {}, clear=True):
            self.assertEqual(call(app, "/shared/a.txt")[0], "503 Service Unavailable")


if __name__ == "__main__":
    unittest.main()
