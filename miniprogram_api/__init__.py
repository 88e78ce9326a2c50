"""The mini-program's HTTP edge (`/api/mp/v1`): one folder per area, each with views.py and schemas.py."""

from flask_smorest import Api


def register(api: Api) -> None:
    """Register every mini-program blueprint; each area is imported plainly, so a missing one fails start-up."""
    from miniprogram_api.assessment.views import blp as assessment
    from miniprogram_api.catalog.views import blp as catalog
    from miniprogram_api.consumer_orders.views import blp as consumer_orders
    from miniprogram_api.incentives.views import blp as incentives
    from miniprogram_api.invites.views import blp as invites
    from miniprogram_api.orders.views import blp as orders
    from miniprogram_api.ratings.views import blp as ratings
    from miniprogram_api.referrals.views import blp as referrals
    from miniprogram_api.registrations.views import blp as registrations
    from miniprogram_api.scans.views import blp as scans
    from miniprogram_api.sessions.views import blp as sessions
    from miniprogram_api.staff.views import blp as staff
    from miniprogram_api.stock.views import blp as stock
    from miniprogram_api.targets.views import blp as targets
    from miniprogram_api.training.views import blp as training
    from miniprogram_api.workspace.views import blp as workspace

    for blp in (sessions, invites, catalog, stock, scans, orders, incentives, staff, registrations, consumer_orders,
                workspace, ratings, targets, training, referrals, assessment):
        api.register_blueprint(blp, url_prefix="/api/mp/v1")
