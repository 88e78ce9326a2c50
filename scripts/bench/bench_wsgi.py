"""The real app plus a bare Flask JSON endpoint at /bench/bare, served by one gunicorn in one run.

The bare endpoint is the yardstick for scan_sell.py; it lives here, never in the app.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from flask import Flask, jsonify
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from wsgi import app as real_app

bare = Flask("bare")


@bare.post("/")
def bare_json():
    return jsonify({"status": "ok"})


real_app.wsgi_app = DispatcherMiddleware(real_app.wsgi_app, {"/bench/bare": bare})
app = real_app
