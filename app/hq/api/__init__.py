"""HQ API blueprints (`/api/hq/v1`)."""

from flask_smorest import Api


def register(api: Api) -> None:
    """Register every HQ API blueprint; each module is imported plainly, so a missing one fails start-up."""
    from app.hq.api.analytics import blp as analytics
    from app.hq.api.assessment import blp as assessment
    from app.hq.api.catalog import blp as catalog
    from app.hq.api.channel import blp as channel
    from app.hq.api.codes import blp as codes
    from app.hq.api.consumer_orders import blp as consumer_orders
    from app.hq.api.orders import blp as orders
    from app.hq.api.referrals import blp as referrals
    from app.hq.api.registrations import blp as registrations
    from app.hq.api.sessions import blp as sessions
    from app.hq.api.targets import blp as targets
    from app.hq.api.territories import blp as territories
    from app.hq.api.training import blp as training
    from app.hq.api.users import blp as users
    from app.hq.api.warehouses import blp as warehouses

    for blp in (sessions, catalog, channel, territories, warehouses, codes, orders, analytics, users, registrations,
                consumer_orders, targets, training, referrals, assessment):
        api.register_blueprint(blp, url_prefix="/api/hq/v1")
