"""The Alembic migrations: what a fresh install builds, that released files never change, and that every database a
release of main can have left behind upgrades to head with its data, on SQLite and on PostgreSQL.

- A fresh install (`flask db upgrade` on an empty database) builds exactly the schema the models declare, which is
  what `create_all` (the tests' databases) builds, the hot path's SQL functions included.
- RELEASED pins every migration and hot-path SQL file by its sha256. A released file never changes: a change to the
  schema or to a function is a NEW revision (and a new `*_vN.sql` file). A file added on a branch is pinned here
  when it is merged onto main.
- HISTORIES lists what each release of main held under migrations/versions and app/scans/sql, file by file; the
  texts no longer in the tree are kept under tests/migration_history/<commit>/. STATES are the databases those
  releases (and this tree's own chain) leave at each revision; each is built from its release's own texts, given
  data, upgraded to head with this tree's migrations, and checked: the data is all there, the schema is the
  models', and the hot path sells.

If a schema test fails after a model change, generate a migration (`flask db migrate -m "..."`), read it, and commit
it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from app.catalog.gtin import make_gtin
from app.codes.parse import check_char
from app.core import partitions
from app.extensions import db
from app.scans import messages
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL, mp_login

# migrations/env.py (Flask-Migrate's template) still calls db.get_engine(); it should read db.engine.
pytestmark = pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = REPO / "migrations"
KEPT_TEXTS = Path(__file__).resolve().parent / "migration_history"
PINNED_FOLDERS = ("migrations/versions", "app/scans/sql")

# Every released migration and hot-path SQL file, as this tree must hold it: path -> sha256 (`sha256sum <path>`).
RELEASED = {
    "migrations/versions/7d427dcc2220_initial_schema.py":
        "bd5842e4859d1c8e72c45fe5ecbadb8999c3ef3227758f141840a5b1c076a2ed",
    "migrations/versions/840769526a57_sales_inbox.py":
        "e91d34c41d6b4b98d2a195572afa011f2b4f16812c0a9e30e49027b7d3ca6042",
    # As 9aa0e7e released it (its parent 840769526a57), which 3b73128 had rewritten (parent d46526d93632).
    "migrations/versions/a3c9e1f04b21_hot_sell_functions.py":
        "43d5b68e30201d83766277cb4024f4b1b7012620599ca78cd5fb50443572bda7",
    # Made idempotent by the fix of the rewritten history (see 2303fe3f8ce0); released as d5b5e31a...
    "migrations/versions/d46526d93632_scan_events_request_id_and_on_hand_after.py":
        "265d585c249262e3bb34268c4f955c4c2d48ca7b285e85bfa2b5b6fee4fc0d64",
    "migrations/versions/2303fe3f8ce0_hot_sell_functions_v2.py":
        "a3d4099e53eb04ded2759bd5780f1852035118ba68e264c15918fedeed518bf4",
    "migrations/versions/5b8e2f7c1d90_users_token_version.py":
        "8d69543a9acc536285eafc79bff4079cf08b3cb3bf895ad2e2624abd51fcd179",
    "migrations/versions/82e6202037b6_cancel_requests_incentive_reversals.py":
        "f7e8aa746c7a9c2b6be4105538e474798e7c58db3233ce708661133059bf9360",
    "migrations/versions/c4a7d2e91f30_territory_assignments_and_attribution.py":
        "93bf377e958b80e66a36e2eea7ca574bfdee2713f9bd59c85169c0fbbd67ea89",
    "migrations/versions/ddab03bc781d_registrations.py":
        "9dd808df8a907afbf4410df811c923a71ac16c2220ecda48499510dab114fa58",
    "migrations/versions/308174f37bd1_consumer_orders.py":
        "700cb25afb37ffa28f306cecc2d656506ae92ef1e73a8d6aafe67352586da622",
    "migrations/versions/c4f1a7d2e9b3_store_ratings.py":
        "616b09770f8b87ad50833e7bd7754cd94607a9537a68839b477479d1964c3a04",
    "migrations/versions/c4a7e2d91b35_alert_handling_and_verify_viewers.py":
        "1e14d1594cf9071b9d38de2b3647aa877008f5c9cb7b20c468d94bfc6f9b9bfb",
    "migrations/versions/4c1f7a9e2b63_sku_case_unit.py":
        "86aa23fb72a072516f440ff776c9b8b9f2799bea9ae8ed0fdf1bc30215509be1",
    "migrations/versions/e7b20c5d4a19_registration_events_request_id.py":
        "d5a3efa9e805b0f43b398d81461d1010f9eb56290eb432b93da63395af5f0a23",
    "migrations/versions/c4f1a2b3d5e6_sales_inbox_created_at.py":
        "9548d181a2af487eb3849d9eb9ab7b9834a5721d210b9ff22addca9f3890fc60",
    "migrations/versions/a7e3c9d1f2b4_partner_targets.py":
        "a5a5ee9f452483913a7a01ea3b937c6356c8f04e01a4fadd9b644b65a2127d8f",
    "migrations/versions/5d2b8e1f0a37_sku_groups_and_target_templates.py":
        "cff06cd329b85634905dd582929b8cdb6a0be9c38a6cf07ac9c9389494e77d1a",
    "migrations/versions/b8d4e2f6a1c3_training.py":
        "e036b5d9e44f863d19801dcbcbb246febb6ed3a462b3438307b36d816e4dce4d",
    "migrations/versions/e3b7c1d9a4f6_month_partitions.py":
        "6ca66381526952510ffc52a58daf1c8d314e1aa28ff5804a349aa5aaeaa7015b",
    "migrations/versions/b5d2e8f1a9c3_referral_rewards.py":
        "256d907dd895b9875b181cf222a335d2c4f23a374e6e2b4139bb8ce33d7da846",
    "migrations/versions/4d5c0c8cb67d_assessment.py":
        "43508ea50057c3806cc43e0b632999f1def29827d305b8da80d2f5920d4bedb1",
    # The v1 functions as a3c9e1f04b21 first built them after 840769526a57 (9aa0e7e); later edited in place.
    "app/scans/sql/scan_sell_one_v1.sql": "a5361974e706283f91b3109990278308b5fb47e4597ee55313c7836e97243e78",
    "app/scans/sql/scan_sell_many_v1.sql": "9434ffd30e6b817edbcb17da8eba6e5fd209d198d77073a197baa0c49cc7a69e",
    # Those edits (3b73128), as versions of their own, which 2303fe3f8ce0 creates.
    "app/scans/sql/scan_sell_one_v2.sql": "dd5cb966357fee41b5891c1a98fd436b1141b429e0520c21ca03c439cb1bc692",
    "app/scans/sql/scan_sell_many_v2.sql": "5e9dc5933f1da402b3aa2cf7d3f3aca33e62592cc05351f212427190c5e3ad21",
    # v2 and the sell's attribution (partner_id, agent_id), which c4a7d2e91f30 creates.
    "app/scans/sql/scan_sell_one_v3.sql": "4e2b7b29a5143c41bea7063c3f7a739c33d1c75e47e940ebe56e290e89ed85cd",
    "app/scans/sql/scan_sell_many_v3.sql": "5deac50fe6f071a847c55558fb95a5d617665a0db80847feeae48a63003a52af",
}

INITIAL = "bd5842e4859d1c8e72c45fe5ecbadb8999c3ef3227758f141840a5b1c076a2ed"
INBOX = "e91d34c41d6b4b98d2a195572afa011f2b4f16812c0a9e30e49027b7d3ca6042"
_V = "migrations/versions/"
_SQL = "app/scans/sql/"

# What each release of main held (`git show <commit>:<path> | sha256sum`), from the commit that changed these
# folders until the next one that did. 9239902's root revision 92abc84a835b (15 tables) is left out: from 34d1cc0 on
# the models had 41 to 43 tables while it stayed the only migration, and 97ef010 replaced it by a new root,
# 7d427dcc2220, that creates every table itself, so no revision can bring a database at 92abc84a835b onto this chain.
HISTORIES: dict[str, dict[str, str]] = {
    "97ef010": {_V + "7d427dcc2220_initial_schema.py": INITIAL},
    # a3c9e1f04b21 straight after the initial schema: scan_sell_many only, which writes the rollups itself.
    "8ba69e2": {
        _V + "7d427dcc2220_initial_schema.py": INITIAL,
        _V + "a3c9e1f04b21_scan_sell_many_function.py":
            "2e79a16684e02c3c36d3c64f0a9b749ca340b6d4a7b4784e68a9fb5f93b141c5",
        _SQL + "scan_sell_many_v1.sql": "c2723206b9ebc5df0a9575149689412f6c84814f48f4c4c19a4ad1ed014d83f1",
    },
    # 840769526a57 put before a3c9e1f04b21 (a database at a3c9e1f04b21 from 8ba69e2 never got the inbox).
    "6eb9391": {
        _V + "7d427dcc2220_initial_schema.py": INITIAL,
        _V + "840769526a57_sales_inbox.py": INBOX,
        _V + "a3c9e1f04b21_scan_sell_many_function.py":
            "dad531f89e74532a1acc0200544e8804cb192f8adad6bd1899a81a27cf5dd589",
        _SQL + "scan_sell_many_v1.sql": "9434ffd30e6b817edbcb17da8eba6e5fd209d198d77073a197baa0c49cc7a69e",
    },
    # a3c9e1f04b21 makes scan_sell_one too (a database at a3c9e1f04b21 from 6eb9391 never got it).
    "9aa0e7e": {
        _V + "7d427dcc2220_initial_schema.py": INITIAL,
        _V + "840769526a57_sales_inbox.py": INBOX,
        _V + "a3c9e1f04b21_hot_sell_functions.py": "43d5b68e30201d83766277cb4024f4b1b7012620599ca78cd5fb50443572bda7",
        _SQL + "scan_sell_one_v1.sql": "a5361974e706283f91b3109990278308b5fb47e4597ee55313c7836e97243e78",
        _SQL + "scan_sell_many_v1.sql": "9434ffd30e6b817edbcb17da8eba6e5fd209d198d77073a197baa0c49cc7a69e",
    },
    # Both v1 files edited in place: a fresh install got these texts, an upgraded database kept 9aa0e7e's.
    "fb2a67b": {
        _V + "7d427dcc2220_initial_schema.py": INITIAL,
        _V + "840769526a57_sales_inbox.py": INBOX,
        _V + "a3c9e1f04b21_hot_sell_functions.py": "43d5b68e30201d83766277cb4024f4b1b7012620599ca78cd5fb50443572bda7",
        _SQL + "scan_sell_one_v1.sql": "a09d39031fafa2d5f27068bd1eae7668787d11ed4d910fad468ca322303b25cd",
        _SQL + "scan_sell_many_v1.sql": "5ea171b31367ca8fc6906c50696b3d646b270c93d236f4e7b262144c1470757b",
    },
    # d46526d93632 put before a3c9e1f04b21 and the v1 files edited again to use its columns (until c5949d6).
    "3b73128": {
        _V + "7d427dcc2220_initial_schema.py": INITIAL,
        _V + "840769526a57_sales_inbox.py": INBOX,
        _V + "d46526d93632_scan_events_request_id_and_on_hand_after.py":
            "d5b5e31ad162ab223abf62fe34340af732a7f248ba0668a48a2e3e6edd2e4511",
        _V + "a3c9e1f04b21_hot_sell_functions.py": "0bfeddce7a0433d018ebd3eeb8d8a116d28f61e9a97c153d6b8edbbb61c5a591",
        _SQL + "scan_sell_one_v1.sql": "dd5cb966357fee41b5891c1a98fd436b1141b429e0520c21ca03c439cb1bc692",
        _SQL + "scan_sell_many_v1.sql": "5e9dc5933f1da402b3aa2cf7d3f3aca33e62592cc05351f212427190c5e3ad21",
    },
}

# (release, revision): a database that release left at that revision ("tree": this tree's own chain). Each one
# identifies itself by its alembic_version alone, and five different databases all say a3c9e1f04b21.
STATES = [
    ("tree", "7d427dcc2220"),  # every release's first revision: the same text in all of them
    ("tree", "840769526a57"),  # the same text in every release that has it
    ("tree", "d46526d93632"),
    ("tree", "a3c9e1f04b21"),  # the same files as 9aa0e7e's
    ("8ba69e2", "a3c9e1f04b21"),  # no sales_inbox, no scan_sell_one, no request_id/on_hand_after
    ("6eb9391", "a3c9e1f04b21"),  # no scan_sell_one, no request_id/on_hand_after
    ("fb2a67b", "a3c9e1f04b21"),  # fb2a67b's texts of the v1 functions, no request_id/on_hand_after
    ("3b73128", "d46526d93632"),  # the columns, no functions
    ("3b73128", "a3c9e1f04b21"),  # the columns and the functions of c5949d6
]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_files() -> dict[str, Path]:
    return {p.relative_to(REPO).as_posix(): p for folder in PINNED_FOLDERS for p in sorted((REPO / folder).iterdir())
            if p.suffix in (".py", ".sql")}


@functools.cache
def _texts_by_hash() -> dict[str, bytes]:
    """Every text this checkout holds for a released file, the tree's and the kept ones, by sha256."""
    files = [*_tree_files().values(), *(p for p in KEPT_TEXTS.rglob("*") if p.suffix in (".txt", ".sql"))]
    return {_sha256(p): p.read_bytes() for p in files}


# --- released files never change ----------------------------------------------------------------------------

def test_released_migration_and_sql_files_are_unchanged():
    tree = _tree_files()
    changed = [f"{path}: released as sha256 {sha}, now " + (_sha256(tree[path]) if path in tree else "deleted")
               for path, sha in RELEASED.items() if path not in tree or _sha256(tree[path]) != sha]
    assert not changed, (
        "a released migration or hot-path SQL file was changed; a database that already ran it never runs it again."
        " Put it back as released (git log -p -- <path>) and make the change a NEW revision (a function's new text"
        " goes in a new *_vN.sql file that the new revision creates):\n  " + "\n  ".join(changed))


def test_every_migration_and_sql_file_is_pinned():
    unpinned = [path for path in _tree_files() if path not in RELEASED]
    assert not unpinned, (
        "files under migrations/versions or app/scans/sql that RELEASED in tests/test_migrations.py does not pin;"
        " once a file is released (merged onto main, after any re-chaining of its down_revision), add it there:\n  "
        + "\n  ".join(f'"{path}": "{_sha256(REPO / path)}",' for path in unpinned))


def test_every_released_text_is_kept():
    texts = _texts_by_hash()
    missing = [f"{commit}: {path} (sha256 {sha})" for commit, files in HISTORIES.items()
               for path, sha in files.items() if sha not in texts]
    assert not missing, ("texts that releases of main held are gone; keep them (git show <commit>:<path>) under "
                         "tests/migration_history/<commit>/:\n  " + "\n  ".join(missing))


# --- databases for the tests --------------------------------------------------------------------------------

@contextmanager
def _logging_kept() -> Iterator[None]:
    """migrations/env.py calls logging.config.fileConfig, which disables every logger that exists; undo that."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    disabled = {name: lg.disabled for name, lg in logging.Logger.manager.loggerDict.items()
                if isinstance(lg, logging.Logger)}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, lg in logging.Logger.manager.loggerDict.items():
            if isinstance(lg, logging.Logger):
                lg.disabled = disabled.get(name, False)


@pytest.fixture(scope="module")
def _pg_scratch() -> Iterator[str | None]:
    """One PostgreSQL database for this module's tests, emptied for each (creating a database is slow)."""
    if not ON_POSTGRES:
        yield None
        return
    base = sa.make_url(TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{base.database}_mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_name(request) -> str:
    if request.param == "postgresql" and not ON_POSTGRES:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not PostgreSQL")
        pytest.skip("needs TEST_DATABASE_URL=postgresql+psycopg://...")
    return request.param


def _emptied(url: str) -> str:
    """PostgreSQL: the database at `url` with nothing in it (its public schema dropped and made again)."""
    eng = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                 " WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        eng.dispose()
    return url


_CREATE_ALL: dict[str, dict] = {}


@pytest.fixture()
def create_all_schema(engine_name, tmp_path, _pg_scratch) -> dict:
    """The schema `create_all` builds from the models (the tests' databases), functions included."""
    if engine_name not in _CREATE_ALL:
        url = f"sqlite:///{tmp_path / 'create_all.db'}" if engine_name == "sqlite" else _emptied(_pg_scratch)
        eng = sa.create_engine(url)
        try:
            db.metadata.create_all(eng)
            with eng.connect() as conn:
                _CREATE_ALL[engine_name] = _structure(conn)
        finally:
            eng.dispose()
    return _CREATE_ALL[engine_name]


@pytest.fixture()
def empty_database(engine_name, tmp_path, _pg_scratch, create_all_schema) -> str:
    """The URL of an empty database on the engine under test."""
    return f"sqlite:///{tmp_path / 'test.db'}" if engine_name == "sqlite" else _emptied(_pg_scratch)


def _head() -> str:
    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()
    assert len(heads) == 1, f"the migrations have {len(heads)} heads {heads}: chain them into one"
    return heads[0]


def _release_folder(release: str, into: Path) -> Path:
    """A migrations folder laid out as `release` had it (its revision files, their SQL files beside the app's)."""
    texts = _texts_by_hash()
    root = into / release
    shutil.copytree(MIGRATIONS, root / "migrations", ignore=shutil.ignore_patterns("versions", "__pycache__"))
    for path, sha in HISTORIES[release].items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(texts[sha])
    return root / "migrations"


def _migrate(app, *, folder: Path = MIGRATIONS, revision: str = "head") -> None:
    with app.app_context(), _logging_kept():
        upgrade(directory=str(folder), revision=revision)
        db.session.remove()
        db.engine.dispose()


@contextmanager
def _connected(app, *, begin: bool = False) -> Iterator[sa.Connection]:
    """A connection to the app's database (a transaction committed at the end with `begin`), then nothing open."""
    with app.app_context():
        try:
            with (db.engine.begin() if begin else db.engine.connect()) as conn:
                yield conn
        finally:
            db.session.remove()
            db.engine.dispose()


# --- what a schema is ---------------------------------------------------------------------------------------

def _model_differences(conn) -> list:
    """alembic autogenerate's comparison of the database with the models: empty when they agree."""
    opts = {"compare_type": True, "compare_server_default": False}
    if conn.dialect.name == "postgresql":  # what month partitioning adds or takes away, as migrations/env.py says
        opts["include_object"] = partitions.include_object
    ctx = MigrationContext.configure(conn, opts=opts)
    return compare_metadata(ctx, db.metadata)


def _structure(conn) -> dict:
    """Everything reflection sees of a schema, in a comparable form, with PostgreSQL's functions."""
    insp = sa.inspect(conn)
    tables = {}
    names = set(insp.get_table_names()) - {"alembic_version"}
    if conn.dialect.name == "postgresql":
        # Month partitions (which months exist depends on the rows and the day) are the partitioned table's.
        names -= set(conn.exec_driver_sql("SELECT relname FROM pg_class WHERE relispartition").scalars())
    for t in sorted(names):
        tables[t] = {
            "columns": sorted((c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                              for c in insp.get_columns(t)),
            "primary key": tuple(insp.get_pk_constraint(t)["constrained_columns"]),
            "foreign keys": sorted((fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"],
                                    tuple(fk["referred_columns"])) for fk in insp.get_foreign_keys(t)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]),
                               sorted((k, " ".join(str(v).split())) for k, v in i.get("dialect_options", {}).items()))
                              for i in insp.get_indexes(t)),
            "unique constraints": sorted((u["name"], tuple(u["column_names"]))
                                         for u in insp.get_unique_constraints(t)),
            "check constraints": sorted((c["name"], " ".join(c["sqltext"].split()))
                                        for c in insp.get_check_constraints(t)),
        }
    functions = {}
    if conn.dialect.name == "postgresql":
        functions = dict(conn.exec_driver_sql(
            "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'").all())
    return {"tables": tables, "functions": functions}


def _structure_differences(found: dict, wanted: dict) -> list:
    out = []
    for kind in ("tables", "functions"):
        for name in sorted(set(found[kind]) | set(wanted[kind])):
            a, b = found[kind].get(name), wanted[kind].get(name)
            if a == b:
                continue
            if a is None or b is None:
                out.append((kind[:-1], name, "only after create_all" if a is None else "only after the migrations"))
            elif kind == "functions":
                out.append(("function", name, "a different text"))
            else:
                out.extend(("table", name, part, a[part], b[part]) for part in a if a[part] != b[part])
    return out


def _schema_problems(app, create_all: dict) -> list:
    """How the app's database differs from the models, from what create_all builds, and from being at head."""
    with _connected(app) as conn:
        problems = [("models", d) for d in _model_differences(conn)]
        problems += _structure_differences(_structure(conn), create_all)
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    if versions != [_head()]:
        problems.append(("alembic_version", versions, "want", [_head()]))
    return problems


def _explain(problems: list) -> str:
    return ("the migrations do not build the models' schema (generate a migration from the models):\n  "
            + "\n  ".join(repr(d)[:400] for d in problems))


# --- a fresh install ----------------------------------------------------------------------------------------

def test_a_fresh_install_builds_the_models_schema(make_app, empty_database, create_all_schema):
    app = make_app(SQLALCHEMY_DATABASE_URI=empty_database)
    _migrate(app)
    problems = _schema_problems(app, create_all_schema)
    assert not problems, _explain(problems)


def test_downgrading_below_the_hot_functions_and_back_rebuilds_head(make_app, empty_database, create_all_schema):
    app = make_app(SQLALCHEMY_DATABASE_URI=empty_database)
    _migrate(app)
    with app.app_context(), _logging_kept():
        downgrade(directory=str(MIGRATIONS), revision="840769526a57")
        db.engine.dispose()
    with _connected(app) as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == ["840769526a57"]
        assert "request_id" not in {c["name"] for c in sa.inspect(conn).get_columns("scan_events")}
        assert _functions(conn) == set()
    _migrate(app)
    problems = _schema_problems(app, create_all_schema)
    assert not problems, _explain(problems)


# --- every released state upgrades to head ------------------------------------------------------------------

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=6)
TZ, STEP, DISPOSITION = "Asia/Shanghai", "retail_selling", "retail_sold"
SOLD_TEMPLATE = messages.SOLD.format(name="%1$s", quantity="%2$s", unit="%3$s", on_hand="%4$s")
OWNER = "mig_store_owner"
UNITS = 6


@dataclass
class Seeded:
    user_id: int
    store_id: int
    sku_id: int
    location_id: int
    gtin: str
    serials: list[str]
    sold_request: str = "mig-sold-before-upgrade"


def _serial(n: int) -> str:
    body = f"ZZZZ{n:09d}"
    return body + check_char(body)


def _seed(conn) -> Seeded:
    """A channel, a store and its owner, a SKU with a price and an incentive, an order of six coded units paid,
    shipped and received (codes, stock with its ledger, events), written with the columns every revision has."""
    md = sa.MetaData()
    md.reflect(conn)

    def add(table: str, **values) -> int:
        return conn.execute(md.tables[table].insert().values(**values)).inserted_primary_key[0]

    partners = md.tables["partners"]
    tier = add("price_tiers", code="retail", name="零售门店价")
    hq = add("partners", code="HQ", name="品牌总部", kind="hq", path="/", level="standard", created_at=T0)
    dist = add("partners", code="D1", name="杭州西湖分销", kind="distributor", parent_id=hq, path="/",
               level="standard", contact_phone="13900000001", created_at=T0)
    for partner, path in ((hq, f"/{hq}/"), (dist, f"/{hq}/{dist}/")):  # the materialized path holds the id
        conn.execute(partners.update().where(partners.c.id == partner).values(path=path))
    wh_loc = add("locations", kind="warehouse", name="杭州分仓", city_code="330100")
    warehouse = add("warehouses", code="WH-HZ", name="杭州分仓", kind="sub", city_code="330100", location_id=wh_loc,
                    created_at=T0)
    add("warehouse_cities", warehouse_id=warehouse, city_code="330100")
    loc = add("locations", kind="store", name="老王便利店", city_code="330100")
    store = add("stores", code="S1", name="老王便利店", owner_name="王建国", phone="13800000001",
                address="杭州市西湖区文三路 88 号", province_code="330000", city_code="330100", district_code="330106",
                industry="convenience", distributor_id=dist, price_tier_id=tier, location_id=loc, is_active=True,
                created_at=T0)
    product = add("products", name="山泉牛奶", brand="山泉", category="食品饮料", created_at=T0)
    gtin = make_gtin("690123456789")
    sku = add("skus", product_id=product, code="MILK250", name="山泉纯牛奶", specification="250ml×12盒", unit="箱",
              gtin=gtin, case_pack=6, min_order_quantity=1, serialized=True, is_active=True, created_at=T0)
    add("sku_prices", sku_id=sku, price_tier_id=tier, price_fen=4800)
    add("incentive_rules", sku_id=sku, step="sell", points=3, amount_fen=20, is_active=True, updated_at=T0)
    user = add("users", openid=OWNER, display_name="王建国", phone="13800000001", is_active=True, failed_logins=0,
               created_at=T0)
    add("memberships", user_id=user, role="store_owner", store_id=store, created_at=T0)

    order = add("orders", number="SO202611300001", request_id="mig-order", store_id=store, created_by_id=user,
                is_proxy=False, status="completed", total_fen=UNITS * 4800, paid_fen=UNITS * 4800, refunded_fen=0,
                payment_method="wechat", note="", warehouse_id=warehouse, created_at=T0, updated_at=T0,
                confirmed_at=T0, paid_at=T0, allocated_at=T0, shipped_at=T0, delivered_at=T0, completed_at=T0)
    add("order_lines", order_id=order, sku_id=sku, quantity=UNITS, unit_price_fen=4800, amount_fen=UNITS * 4800,
        reserved_quantity=0, shipped_quantity=UNITS, received_quantity=UNITS)
    add("payments", order_id=order, method="wechat", amount_fen=UNITS * 4800, transaction_id="4200000001202611300001",
        user_id=user, paid_at=T0, created_at=T0)
    for before, after, action in ((None, "pending_payment", "create"), ("pending_payment", "paid", "pay"),
                                  ("paid", "completed", "receive")):
        add("order_events", order_id=order, from_status=before, to_status=after, action=action, user_id=user, at=T0)

    batch = add("code_batches", sku_id=sku, quantity=UNITS, status="done", units_made=UNITS, cases_made=0,
                created_at=T0, started_at=T0, finished_at=T0)
    serials = [_serial(n) for n in range(UNITS)]
    add("stock_levels", location_id=loc, sku_id=sku, on_hand=UNITS, reserved=0, updated_at=T0)
    add("stock_movements", location_id=loc, sku_id=sku, delta_on_hand=UNITS, delta_reserved=0, kind="receive",
        reason="到货扫码", ref_type="order", ref_id=str(order), user_id=user, created_at=T0)
    for serial in serials:
        code = add("codes", serial=serial, kind="unit", sku_id=sku, batch_id=batch, state="in_store", location_id=loc,
                   store_id=store, order_id=order, destination_store_id=store, destination_distributor_id=dist,
                   destination_region="330100", verify_count=0, created_at=T0, updated_at=T0)
        add("scan_events", code_id=code, sku_id=sku, quantity=1, action="receive", biz_step="receiving",
            disposition="sellable_accessible", store_id=store, location_id=loc, event_time=T0, recorded_at=T0,
            user_id=user, order_id=order, diverted=False)
    return Seeded(user_id=user, store_id=store, sku_id=sku, location_id=loc, gtin=gtin, serials=serials)


def _functions(conn) -> set[str]:
    if conn.dialect.name != "postgresql":
        return set()
    return set(conn.exec_driver_sql(
        "SELECT proname FROM pg_proc WHERE proname IN ('scan_sell_one', 'scan_sell_many')").scalars())


def _sell_before_upgrade(conn, s: Seeded) -> None:
    """The first unit sold as that release sold it: by its own hot-path function where it has one."""
    serial, functions = s.serials[0], _functions(conn)
    if "scan_sell_one" in functions:
        answer = conn.exec_driver_sql(
            "SELECT scan_sell_one(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (s.user_id, s.sold_request, serial, s.gtin, s.store_id, T1, 30.27, 120.15, T1, TZ, STEP, DISPOSITION,
             SOLD_TEMPLATE)).scalar()
        assert answer is not None
        return
    if "scan_sell_many" in functions:
        rows = conn.exec_driver_sql(
            "SELECT out_ord, out_answer FROM scan_sell_many(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            ([0], [s.user_id], [s.sold_request], [serial], [s.gtin], [s.store_id], [T1], [30.27], [120.15], T1, TZ,
             STEP, DISPOSITION, SOLD_TEMPLATE)).all()
        assert len(rows) == 1
        return
    # The general path's rows (SQLite, or a PostgreSQL database at a revision before the functions).
    md = sa.MetaData()
    md.reflect(conn)
    t = md.tables
    code_id = conn.scalar(sa.select(t["codes"].c.id).where(t["codes"].c.serial == serial))
    conn.execute(t["codes"].update().where(t["codes"].c.id == code_id).values(
        state="sold", location_id=None, sold_at=T1, updated_at=T1))
    conn.execute(t["stock_levels"].update().values(on_hand=UNITS - 1, updated_at=T1))
    conn.execute(t["stock_movements"].insert().values(
        location_id=s.location_id, sku_id=s.sku_id, delta_on_hand=-1, delta_reserved=0, kind="sell", ref_type="scan",
        ref_id=s.sold_request, user_id=s.user_id, created_at=T1))
    event = conn.execute(t["scan_events"].insert().values(
        code_id=code_id, sku_id=s.sku_id, quantity=1, action="sell", biz_step=STEP, disposition=DISPOSITION,
        store_id=s.store_id, location_id=s.location_id, event_time=T1, recorded_at=T1, user_id=s.user_id,
        lat=30.27, lng=120.15, diverted=False)).inserted_primary_key[0]
    conn.execute(t["incentive_credits"].insert().values(
        store_id=s.store_id, code_id=code_id, sku_id=s.sku_id, step="sell", points=3, amount_fen=20, event_id=event,
        created_at=T1))
    day = T1.date()
    if "sales_inbox" in t:
        conn.execute(t["sales_inbox"].insert().values(day=day, sku_id=s.sku_id, store_id=s.store_id, units=1,
                                                      amount_fen=4800))
    else:  # before 840769526a57 the scan added to the rollups itself
        conn.execute(t["daily_sales"].insert().values(
            day=day, sku_id=s.sku_id, store_id=s.store_id, province_code="330000", city_code="330100",
            distributor_id=conn.scalar(sa.select(t["stores"].c.distributor_id)), units=1, amount_fen=4800))
        conn.execute(t["daily_city_sales"].insert().values(
            day=day, sku_id=s.sku_id, city_code="330100", province_code="330000", units=1, amount_fen=4800))
        conn.execute(t["daily_city_totals"].insert().values(
            day=day, city_code="330100", province_code="330000", units=1, amount_fen=4800))
    answer = {"request_id": s.sold_request, "status": "accepted", "reason": None,
              "message": messages.sold("山泉纯牛奶", 1, "箱", UNITS - 1), "action": "sell", "serial": serial,
              "code_state": "sold", "sku": {"sku_id": s.sku_id, "name": "山泉纯牛奶", "unit": "箱", "gtin": s.gtin},
              "quantity": 1, "stock": {"sku_id": s.sku_id, "on_hand": UNITS - 1}, "alerts": [], "event_id": event,
              "store_id": s.store_id}
    conn.execute(t["scan_requests"].insert().values(user_id=s.user_id, request_id=s.sold_request, answer=answer,
                                                    created_at=T1))


def _rows(conn, only: dict[str, list[str]] | None = None) -> dict[str, list[tuple]]:
    """Every row of every table (alembic's own aside), or of the tables and columns in `only`, in key order."""
    md = sa.MetaData()
    md.reflect(conn)
    out = {}
    for name, table in md.tables.items():
        if name == "alembic_version" or (only is not None and name not in only):
            continue
        cols = [table.c[c] for c in (only[name] if only is not None else table.c.keys())]
        key = list(table.primary_key.columns) or cols
        out[name] = [tuple(r) for r in conn.execute(sa.select(*cols).order_by(*key))]
    return out


def _columns(conn) -> dict[str, list[str]]:
    insp = sa.inspect(conn)
    return {t: [c["name"] for c in insp.get_columns(t)] for t in insp.get_table_names() if t != "alembic_version"}


def _sell_through_the_function(app, s: Seeded) -> tuple[str, str, int]:
    """PostgreSQL: scan_sell_one as head made it sells a unit and records the request on its event."""
    request_id, serial = "mig-hot-after-upgrade", s.serials[3]
    with _connected(app, begin=True) as conn:
        inbox = conn.execute(sa.text("SELECT count(*) FROM sales_inbox")).scalar()
        now = datetime.now(UTC)
        raw = conn.exec_driver_sql(
            "SELECT scan_sell_one(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (s.user_id, request_id, serial, s.gtin, s.store_id, now, None, None, now, TZ, STEP, DISPOSITION,
             SOLD_TEMPLATE)).scalar()
        assert raw is not None, "scan_sell_one left a plain sell to the general path"
        answer = json.loads(raw)
        assert (answer["status"], answer["serial"], answer["stock"]["on_hand"]) == ("accepted", serial, UNITS - 2)
        event = conn.execute(sa.text("SELECT request_id, on_hand_after FROM scan_events WHERE id = :id"),
                             {"id": answer["event_id"]}).one()
        assert tuple(event) == (request_id, UNITS - 2)
        assert conn.execute(sa.text("SELECT count(*) FROM sales_inbox")).scalar() == inbox + 1
    return request_id, serial, UNITS - 2


@pytest.mark.parametrize(("release", "revision"), STATES, ids=[f"{r}-{v}" for r, v in STATES])
def test_a_database_from_a_release_upgrades_to_head_with_its_data(make_app, engine_name, empty_database,
                                                                   create_all_schema, tmp_path, release, revision):
    app = make_app(SQLALCHEMY_DATABASE_URI=empty_database)
    _migrate(app, folder=MIGRATIONS if release == "tree" else _release_folder(release, tmp_path), revision=revision)
    with _connected(app, begin=True) as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [revision]
        seeded = _seed(conn)
        _sell_before_upgrade(conn, seeded)
    with _connected(app) as conn:
        columns, before = _columns(conn), _rows(conn)

    _migrate(app)

    problems = _schema_problems(app, create_all_schema)
    assert not problems, _explain(problems)
    with _connected(app) as conn:
        after = _rows(conn, only=columns)
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    assert not changed, f"rows the upgrade changed or lost: {changed}"

    sold_here = []
    if engine_name == "postgresql":
        sold_here.append(_sell_through_the_function(app, seeded))
    client = app.test_client()
    owner = mp_login(client, OWNER)
    # A request answered before (before the upgrade; and by the new function) gets its first answer again.
    for request_id, serial, on_hand in [(seeded.sold_request, seeded.serials[0], UNITS - 1), *sold_here]:
        replay = client.post("/api/mp/v1/scans", headers=owner, json={
            "request_id": request_id, "code": serial, "action": "sell", "scanned_at": datetime.now(UTC).isoformat()})
        body = replay.get_json()
        assert replay.status_code == 200, body
        assert (body["status"], body["serial"], body["stock"]["on_hand"], body.get("replayed")) == (
            "accepted", serial, on_hand, True), body
    # A new sale goes through, and every stock level still equals its ledger.
    sold = client.post("/api/mp/v1/scans", headers=owner, json={
        "request_id": "mig-sell-after-upgrade", "code": seeded.serials[2], "action": "sell",
        "scanned_at": datetime.now(UTC).isoformat()})
    body = sold.get_json()
    assert sold.status_code == 200, body
    assert (body["status"], body["stock"]["on_hand"]) == ("accepted", UNITS - 2 - len(sold_here)), body
    with app.app_context():
        from app.inventory.services import verify_ledger

        assert verify_ledger() == []
        db.session.remove()
        db.engine.dispose()


# --- c4a7d2e91f30: territories become assignments, attribution back-filled from the tree ---------------------

def test_the_attribution_migration_back_fills_existing_rows_from_the_tree(make_app, engine_name, empty_database,
                                                                         create_all_schema):
    """A database at 82e6202037b6 with an order, its commission row, a sell and a territory (D1 under agent A1):
    after the upgrade the order and the commission row name A1 as the agent, the sell names D1 and A1, the other
    events name nobody, and the territory is a shared assignment from its partner's creation."""
    app = make_app(SQLALCHEMY_DATABASE_URI=empty_database)
    _migrate(app, revision="82e6202037b6")
    with _connected(app, begin=True) as conn:
        seeded = _seed(conn)
        _sell_before_upgrade(conn, seeded)
        md = sa.MetaData()
        md.reflect(conn)
        t = md.tables
        hq = conn.scalar(sa.select(t["partners"].c.id).where(t["partners"].c.code == "HQ"))
        dist = conn.scalar(sa.select(t["partners"].c.id).where(t["partners"].c.code == "D1"))
        agent = conn.execute(t["partners"].insert().values(
            code="A1", name="华东区域代理", kind="agent", parent_id=hq, path=f"/{hq}/", level="standard",
            created_at=T0)).inserted_primary_key[0]
        conn.execute(t["partners"].update().where(t["partners"].c.id == dist).values(parent_id=agent))
        conn.execute(t["orders"].update().values(bringing_partner_id=dist, routed_partner_id=dist))
        rule = conn.execute(t["commission_rules"].insert().values(
            margin_bp=1000, bringer_share_bp=5000, created_at=T0)).inserted_primary_key[0]
        order = conn.scalar(sa.select(t["orders"].c.id))
        conn.execute(t["commission_entries"].insert().values(
            order_id=order, partner_id=dist, role="sole", base_fen=2880, share_bp=10000, amount_fen=2880,
            rule_id=rule, created_at=T1))
        conn.execute(t["territories"].insert().values(partner_id=dist, region_code="330100", industry=None))

    _migrate(app)

    problems = _schema_problems(app, create_all_schema)
    assert not problems, _explain(problems)
    with _connected(app) as conn:
        assert conn.execute(sa.text("SELECT bringing_agent_id, routed_agent_id FROM orders")).one() == (agent, agent)
        assert conn.execute(sa.text("SELECT partner_id, agent_id FROM commission_entries")).one() == (dist, agent)
        events = conn.execute(sa.text("SELECT action, partner_id, agent_id FROM scan_events ORDER BY id")).all()
        assert [tuple(e) for e in events if e[0] == "sell"] == [("sell", dist, agent)]
        assert {(e[1], e[2]) for e in events if e[0] != "sell"} == {(None, None)}
        territory = conn.execute(sa.text("SELECT kind, valid_from, valid_to, created_at FROM territories")).one()
        assert territory[0] == "shared" and territory[2] is None
        assert all(_aware(v) == T0 for v in (territory[1], territory[3]))
    # And a sell after the upgrade writes its attribution (the hot path's v3 function on PostgreSQL).
    client = app.test_client()
    owner = mp_login(client, OWNER)
    sold = client.post("/api/mp/v1/scans", headers=owner, json={
        "request_id": "mig-attributed-sell", "code": seeded.serials[1], "action": "sell",
        "scanned_at": datetime.now(UTC).isoformat()})
    assert sold.status_code == 200 and sold.get_json()["status"] == "accepted", sold.get_json()
    with _connected(app) as conn:
        assert conn.execute(sa.text("SELECT partner_id, agent_id FROM scan_events WHERE id = :id"),
                            {"id": sold.get_json()["event_id"]}).one() == (dist, agent)
    # Down again with the rows in place (no table that others point at is rebuilt), and back up.
    with app.app_context(), _logging_kept():
        downgrade(directory=str(MIGRATIONS), revision="82e6202037b6")
        db.session.remove()
        db.engine.dispose()
    with _connected(app) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM orders")).scalar() == 1
        assert "agent_id" not in {c["name"] for c in sa.inspect(conn).get_columns("scan_events")}
    _migrate(app)
    problems = _schema_problems(app, create_all_schema)
    assert not problems, _explain(problems)


def _aware(value) -> datetime:
    """A timestamp as read back raw: SQLite gives text without a zone, PostgreSQL an aware datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
