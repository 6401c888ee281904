import io
import unittest

from hello_web.server import make_app


def call(app, path):
    status = {}

    def start_response(s, headers):
        status["s"] = s

    body = b"".join(app({"PATH_INFO": path, "wsgi.input": io.BytesIO()}, start_response))
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


if __name__ == "__main__":
    unittest.main()
