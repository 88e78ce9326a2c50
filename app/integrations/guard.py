"""No call to WeChat or WeChat Pay while a database transaction is open.

An outside call can take seconds (or its whole timeout). Made inside a transaction it holds a pooled connection,
and whatever row locks the transaction took, for that long, and a rollback afterwards cannot undo what the
outside system already did. So the gateways check, at the start of every outgoing call, that the request's
Flask-SQLAlchemy session has no transaction open: end it first (commit, or `db.session.rollback()` after a
read), then call, then open a new one for what follows.

Under TESTING or outside production a breach raises, so a test finds it; in production it is logged as an
error and the call goes ahead, so a missed case costs a slow request, not a failed one.
"""

from __future__ import annotations

import logging

from flask import current_app, has_app_context

from app.extensions import db

log = logging.getLogger(__name__)


class TransactionOpenDuringCall(RuntimeError):
    """A WeChat or WeChat Pay call was about to be made with a database transaction open (a programming error)."""


def check_no_open_transaction(call: str) -> None:
    """Raise (tests, development) or log an error (production) if the session has a transaction open."""
    if not has_app_context() or not db.session.registry.has():
        return  # no session in this context, so no transaction
    if not db.session().in_transaction():
        return
    message = (f"{call} called with a database transaction open: end it (commit, or db.session.rollback() "
               f"after a read) before calling out")
    config = current_app.config
    if config.get("TESTING") or config.get("APP_ENV") != "production":
        raise TransactionOpenDuringCall(message)
    log.error(message, stack_info=True)
