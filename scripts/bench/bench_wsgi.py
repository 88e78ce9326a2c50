"""The real app plus two yardsticks, served by one gunicorn in one run (they live here, never in the app):

- /bench/bare: a bare Flask JSON endpoint (a second, empty Flask app mounted beside ours);
- /bench/ref: a plain Flask-SQLAlchemy write in our app: lock one stock row, insert one row, commit, answer
  JSON. It is what the issue calls "an endpoint that inserts a row and locks a stock row".
"""

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sqlalchemy as sa
from flask import Flask, jsonify
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from app.extensions import db
from app.inventory.models import StockLevel
from wsgi import app as real_app

bare = Flask("bare")


@bare.post("/")
def bare_json():
    return jsonify({"status": "ok"})


# scan_sell.py creates this table in the benchmark database.
REF_ROWS = sa.Table("bench_ref_rows", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("level_id", sa.BigInteger), sa.Column("note", sa.String(64)))
_turn = itertools.count()
_levels: list[int] = []


@real_app.post("/bench/ref/")
def ref_write():
    if not _levels:
        _levels.extend(db.session.scalars(sa.select(StockLevel.id).order_by(StockLevel.id).limit(10)))
    level_id = _levels[next(_turn) % len(_levels)]
    level = db.session.get(StockLevel, level_id, with_for_update=True)
    db.session.execute(sa.insert(REF_ROWS).values(level_id=level.id, note="ref"))
    db.session.commit()
    return jsonify({"status": "ok", "on_hand": level.on_hand})


real_app.wsgi_app = DispatcherMiddleware(real_app.wsgi_app, {"/bench/bare": bare})
app = real_app
