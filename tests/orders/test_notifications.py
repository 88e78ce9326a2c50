"""Order messages: read what they need, end the transaction, then call WeChat once per owner."""

from __future__ import annotations

import sqlalchemy as sa

from app.accounts.models import Membership, User
from app.accounts.roles import STORE_OWNER
from app.core.tx import transaction
from app.extensions import db
from app.orders.models import Order
from app.orders.notifications import send_order_message
from tests.orders.conftest import fake_messages


def test_a_message_to_each_owner_with_no_transaction_open(app, demo, fake_wechat):
    """Run as a worker runs a job: a fresh app context, the order loaded, two owners to tell."""
    with app.app_context():
        order_id, store_id = db.session.execute(sa.select(Order.id, Order.store_id).order_by(Order.id)).first()
        with transaction():
            second = User(openid="second_owner_openid", display_name="", is_active=True)
            db.session.add(second)
            db.session.flush()
            db.session.add(Membership(user_id=second.id, role=STORE_OWNER, store_id=store_id))
        owners = set(db.session.scalars(sa.select(User.openid).join(Membership).where(
            Membership.store_id == store_id, Membership.role == STORE_OWNER)))
        db.session.remove()
    before = len(fake_messages(fake_wechat))

    with app.app_context():
        # The guard raises TransactionOpenDuringCall here if the job calls WeChat with its read still open.
        assert send_order_message(order_id, "order_paid") == len(owners) == 2
        db.session.remove()

    sent = fake_messages(fake_wechat)[before:]
    assert {m["touser"] for m in sent} == owners
    assert all(m["template_id"] == "tmpl_order_paid" and m["page"] == f"pages/orders/detail?id={order_id}"
               for m in sent)
