"""Periodic jobs, for `rq cron` (`scripts/cron`): one scheduler process enqueues them, RQ workers run them.

Each job runs through `run_job_in_worker`, so it gets the app and its settings like any other job.
"""

from rq import cron

from app.worker import run_job_in_worker

# path of the job function → seconds between runs
SCHEDULE = {
    # Sales recorded by scans → the sell-through rollups (dashboards also fold before every read).
    "app.analytics.rollups.fold": 5,
    # Ask WeChat Pay about orders left awaiting payment (a lost callback must not leave an order unpaid).
    "app.orders.payments.reconcile_payments": 300,
    # Cancel proxy orders the owner did not confirm in time.
    "app.orders.services.expire_unconfirmed": 3600,
    # Consumer orders: remind the serving partner before an order passes on; pass on those not accepted in time.
    "app.orders.consumer_orders.sweep_consumer_orders": 60,
    # Code batches left pending (their job was lost with Redis or with the process that queued it).
    "app.codes.services.sweep_pending_batches": 60,
    # Registrations: protections past their date expire (their shops free again); the partner is reminded a few
    # days before; converted stores with no order and no scan for the policy's days are marked dormant for HQ.
    "app.channel.registrations.expire_registrations": 3600,
    "app.channel.registrations.remind_expiring": 3600,
    "app.channel.registrations.mark_dormant": 86400,
    # Training: a live session about to start, a required course nearly due (each message once per user).
    "app.training.notices.remind_live_sessions": 300,
    "app.training.notices.remind_due_courses": 3600,
    # PostgreSQL: this month's and the next three months' partitions of scan_events and stock_movements (idempotent;
    # rows of a new month that fell into the DEFAULT partition are moved into it). Nothing on SQLite.
    "app.core.partitions.create_coming_partitions": 86400,
    # Referral rewards past their freeze become available (a unit no longer sold is cancelled instead).
    "app.referrals.services.release_due": 600,
}

for path, seconds in SCHEDULE.items():
    # A run that is still going when the next is due is not doubled up: the interval outlasts the job timeout.
    cron.register(run_job_in_worker, "default", args=(path,), interval=seconds, job_timeout=max(seconds - 1, 4),
                  name=path.rsplit(".", 1)[1])
