"""`rq cron` (scripts/cron) loads app/cron.py and schedules the periodic jobs, each a function that exists."""

from __future__ import annotations

from pathlib import Path

from redis import Redis
from rq.cron import CronScheduler

from app.integrations.jobs import _resolve
from app.worker import run_job_in_worker

ROOT = Path(__file__).resolve().parents[1]


def test_rq_cron_schedules_the_periodic_jobs():
    scheduler = CronScheduler(connection=Redis.from_url("redis://127.0.0.1:6379/15"))  # no connection made here
    scheduler.load_config_from_file(str(ROOT / "app" / "cron.py"))
    jobs = {job.name: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"fold", "reconcile_payments", "expire_unconfirmed", "sweep_pending_batches",
                         "expire_registrations", "remind_expiring", "mark_dormant",
                         "sweep_consumer_orders", "remind_live_sessions", "remind_due_courses",
                         "create_coming_partitions", "release_due"}
    assert jobs["fold"].interval <= 10  # dashboards fold on read too, but the inbox must not pile up
    for job in jobs.values():
        assert job.func is run_job_in_worker
        assert callable(_resolve(job.args[0]))


def test_the_queue_names_the_workers_entry_point():
    """`enqueue` puts jobs on Redis under a dotted path (the queue imports no app); it is the worker's entry."""
    from app.integrations.jobs import WORKER_ENTRY

    assert _resolve(WORKER_ENTRY) is run_job_in_worker
