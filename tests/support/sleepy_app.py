"""PiCloud plus one probe view that waits on a slow query, served like app.py.

The probe exists only in this test harness: it lets a test prove that a slow query in
one request does not stop gevent from serving the others.
"""
from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gevent.pywsgi import WSGIServer  # noqa: E402

from picloud.web import create_app  # noqa: E402
from picloud.config import load_settings  # noqa: E402
from picloud.db import db  # noqa: E402

app = create_app(load_settings())


@app.get("/api/__probe__/sleep")
def sleep():
    db.execute_sql("SELECT pg_sleep(0.2)")
    return "slept"


host, _, port = app.config["PICLOUD"].bind.rpartition(":")
WSGIServer((host, int(port)), app, log=None).serve_forever()
