"""The roles, and which actions each may take. Scope (which objects) is checked in `app.core.security`."""

STORE_OWNER = "store_owner"
STORE_CLERK = "store_clerk"
DISTRIBUTOR_STAFF = "distributor_staff"
AGENT_STAFF = "agent_staff"
HQ_ADMIN = "hq_admin"
HQ_ANALYST = "hq_analyst"
WAREHOUSE_OPERATOR = "warehouse_operator"
# A shopper logged in to the mini-program with WeChat: verifies units and takes part in referral rewards (no
# store, partner or region; never given through an invite, so not in ALL_ROLES).
CONSUMER = "consumer"

ALL_ROLES = (STORE_OWNER, STORE_CLERK, DISTRIBUTOR_STAFF, AGENT_STAFF, HQ_ADMIN, HQ_ANALYST, WAREHOUSE_OPERATOR)
STORE_ROLES = (STORE_OWNER, STORE_CLERK)
PARTNER_ROLES = (DISTRIBUTOR_STAFF, AGENT_STAFF)
HQ_ROLES = (HQ_ADMIN, HQ_ANALYST, WAREHOUSE_OPERATOR)

ROLE_NAMES = {
    STORE_OWNER: "店主",
    STORE_CLERK: "店员",
    DISTRIBUTOR_STAFF: "分销商员工",
    AGENT_STAFF: "区域代理员工",
    HQ_ADMIN: "总部管理员",
    HQ_ANALYST: "总部分析员",
    WAREHOUSE_OPERATOR: "仓库操作员",
    CONSUMER: "消费者",
}

_STORE_READ = {"store.read", "stock.read", "catalog.read", "order.read", "incentive.read"}
# member.manage: see and remove the people bound to a store (an owner: its clerks only).
# consumer_order.*: take a consumer's order, see those brought or served, and serve one (accept, decline, complete).
_CONSUMER_ORDERS = {"consumer_order.create", "consumer_order.read", "consumer_order.serve"}
# channel.read: the partner's workspace, the list of the stores in one's scope with their figures (not a store's).
_PARTNER = _STORE_READ | _CONSUMER_ORDERS | {"partner.read", "channel.read", "order.create", "order.cancel",
                                             "order.offline_pay", "invite.create", "store.register", "member.manage"}

PERMISSIONS: dict[str, frozenset[str]] = {
    # rating.write: rate the distributor serving one's store (owners only; nobody rates for someone else).
    STORE_OWNER: frozenset(_STORE_READ | {"scan", "stock.adjust", "order.create", "order.confirm", "order.pay",
                                          "order.cancel", "order.receive", "invite.create",
                                          "member.manage", "rating.write", "course.take"}),
    STORE_CLERK: frozenset(_STORE_READ | {"scan", "order.receive", "course.take"}),
    # course.take: read the courses one is in the audience of, report lesson progress, answer their quiz.
    DISTRIBUTOR_STAFF: frozenset(_PARTNER | {"course.take"}),
    AGENT_STAFF: frozenset(_PARTNER | {"course.take"}),
    # alert.handle: move a diversion alert through its statuses and add notes to it (in the caller's region).
    HQ_ANALYST: frozenset(_STORE_READ | {"partner.read", "channel.read", "hq.read", "consumer_order.read",
                                         "alert.handle"}),
    WAREHOUSE_OPERATOR: frozenset({"hq.read", "order.read", "store.read", "warehouse.operate",
                                   "consumer_order.read"}),
    # consumer.verify: check a unit in the mini-program, recorded against the consumer; referral.use: share a
    # link, be bound through one, read one's own rewards.
    CONSUMER: frozenset({"consumer.verify", "referral.use"}),
    HQ_ADMIN: frozenset(_PARTNER | {"hq.read", "hq.write", "warehouse.operate", "stock.adjust", "order.pay",
                                    "order.offline_pay", "scan.admin", "user.manage",
                                    "alert.handle"}),
}
