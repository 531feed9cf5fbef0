"""Bench fleets on PostgreSQL: built once into a template database with set-based inserts, then cloned.

`fleet(locks)` gives a working copy of a fleet of `locks` simulated locks, built the first time into
`<db>_f<locks>_h<page history>_<key>` (the key changes with the migrations and with FLEET_VERSION, so a schema change
or a change of what is built rebuilds it) and cloned with `CREATE DATABASE … TEMPLATE` for each run, which takes seconds where
building takes minutes. The default connection is pointed at the copy while a bench uses it.

Per 100 locks: one tenant with one simulator account (the Nuki-like profile: PINs read back) and 50
properties of 2 doors. Each property has a year of weekly stays behind it (52), the current one and 15
ahead; each stay has a guest code on both doors, and each door 4 people's codes (cleaner, maintenance,
owner, staff): 20 live codes a door (5 on the lock, 15 waiting for their time). Ended codes are removed,
with their create and delete commands, two Activity rows a command, one stored webhook event a command,
and a weekly reconciliation a door. Every door was read within the last 5.5 hours, so nothing is due
until a bench makes it due. At 10,000 doors: 200,000 live codes, ~1.2 M codes in all, ~1.1 M commands,
~2.7 M Activity rows, ~1.1 M webhook events.

Two more tenants serve the page bench: `pages-small` (10 bookings: the current stay and 9 ahead) and
`pages-large` (the same 10 plus `page_history` past stays), each one property of 2 doors, with the
staff user `bench-staff` a member of both.

The fleet's clock is `t0`, the moment it was built (kept in the table `bench_fleet_clock`): benches run
at `t0` (time-machine), so a template built last week is as fresh as one built now.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import connection

FLEET_VERSION = 3  # raise when what `_populate` builds changes: the cached templates are built again
LOCKS_PER_TENANT = 100
DOORS_PER_PROPERTY = 2
LIVE_PINS = 20  # live codes a door: the current stay, 15 ahead, 4 people's codes
PEOPLE = (("cleaner", "Cleaner"), ("maintenance", "Maintenance"), ("owner", "Owner"), ("staff", "Staff"))
REQUIREMENTS = ('{"code_lengths": [6], "max_active_codes": 100, "constraints": ["no_zeros", '
                '"cannot_start_with_12"], "name_max_length": 20, "simulator_profile": "nuki"}')
PAGE_USER = "bench-staff"

_working: dict[int, str] = {}  # locks → the working copy made in this run
_base: list[str] = []  # the database named by DATABASE_URL: fleet databases are named after it


def configure(*, base: str) -> None:
    _base[:] = [base]


@dataclass(frozen=True)
class Fleet:
    locks: int
    database: str
    t0: datetime


def available() -> bool:
    return connection.vendor == "postgresql"


def _key(page_history: int) -> str:
    digest = hashlib.sha256(f"{FLEET_VERSION}:{page_history}".encode())
    for app in ("portal", "locks", "providers"):
        for path in sorted((Path(settings.BASE_DIR) / app / "migrations").glob("0*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def _admin(sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """SQL outside any database being used: CREATE/DROP DATABASE, on the maintenance database."""
    import psycopg

    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"] or None,
                         password=db["PASSWORD"] or None, dbname="postgres", autocommit=True) as conn:
        cursor = conn.execute(sql, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def _exists(name: str) -> bool:
    return bool(_admin("SELECT 1 FROM pg_database WHERE datname = %s", (name,)))


def _drop(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def use(name: str) -> None:
    """Point the default connection at database `name` (closing the current one)."""
    connection.close()
    connection.settings_dict["NAME"] = name
    settings.DATABASES["default"]["NAME"] = name


@contextmanager
def using(name: str) -> Iterator[None]:
    previous = connection.settings_dict["NAME"]
    use(name)
    try:
        yield
    finally:
        use(previous)


def fleet(locks: int, *, page_history: int) -> Fleet:
    """A working copy of the fleet of `locks` doors (built into its template first if need be). The
    copy lives until `cleanup()`; the caller switches to it with `using(fleet.database)`."""
    base = _base[0] if _base else str(connection.settings_dict["NAME"])
    template = f"{base}_f{locks}_h{page_history}_{_key(page_history)}"
    if not _exists(template):
        for (stale,) in _admin("SELECT datname FROM pg_database WHERE datname LIKE %s AND datname <> %s",
                               (f"{base}_f{locks}\\_h{page_history}\\_%", template)):
            _drop(str(stale))  # an older build of this size: the schema or the builder changed
        started = time.perf_counter()
        building = f"{template}_building"
        _drop(building)
        _admin(f'CREATE DATABASE "{building}"')
        with using(building):
            call_command("migrate", verbosity=0, interactive=False)
            _populate(locks, page_history=page_history)
        _admin(f'ALTER DATABASE "{building}" RENAME TO "{template}"')
        print(f"info  built the {locks:,}-door bench fleet in {time.perf_counter() - started:.0f}s "
              f"(template database {template}, reused by later runs)", flush=True)
    if locks not in _working:
        copy = f"{base}_w{locks}"
        _drop(copy)
        started = time.perf_counter()
        _admin(f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')
        print(f"info  copied the {locks:,}-door fleet from its template in {time.perf_counter() - started:.0f}s",
              flush=True)
        _working[locks] = copy
    with using(_working[locks]), connection.cursor() as cursor:
        cursor.execute("SELECT t0 FROM bench_fleet_clock")
        t0 = cursor.fetchone()[0]
    return Fleet(locks=locks, database=_working[locks], t0=t0)


def cleanup() -> None:
    for name in _working.values():
        _drop(name)
    _working.clear()


# --------------------------------------------------------------------------- building


def fleet_pins() -> list[str]:
    """LIVE_PINS distinct 6-digit PINs every bench door accepts (digits 1–9, not starting with 12)."""
    from locks.pins import validate_pin

    rng = random.Random(15)
    pins: list[str] = []
    while len(pins) < LIVE_PINS:
        pin = "".join(rng.choice("123456789") for _ in range(6))
        if pin not in pins and not pin.startswith("12") and not validate_pin(pin, {"code_lengths": [6]}):
            pins.append(pin)
    return pins


def _populate(locks: int, *, page_history: int) -> None:
    from django.contrib.auth import get_user_model

    from locks.models import AccessCode
    from portal.encryption import fingerprint
    from portal.models import Membership, Role, Tenant
    from providers.models import ProviderAccount, Vendor

    t0 = datetime.now().astimezone().replace(second=0, microsecond=0)
    tenants = max(1, locks // LOCKS_PER_TENANT)
    pins = fleet_pins()
    pin_field = AccessCode._meta.get_field("pin")
    tokens = [pin_field.get_prep_value(pin) for pin in pins]
    fingerprints = [fingerprint(pin) for pin in pins]

    def tenant(slug: str) -> int:
        made = Tenant.objects.create(name=f"Bench {slug}", slug=slug)
        ProviderAccount.objects.create(tenant=made, vendor=Vendor.SIMULATOR, name=f"Simulated locks of {slug}",
                                       credentials={"seed": 1}, webhook_secret=f"bench-{slug}")
        return made.pk

    fleet_tenants = [tenant(f"fleet-{n:04d}") for n in range(tenants)]
    deferred = _defer_indexes()
    small, large = tenant("pages-small"), tenant("pages-large")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_fleet_clock (t0 timestamptz NOT NULL)")
        cursor.execute("INSERT INTO bench_fleet_clock VALUES (%s)", [t0])
    day = timedelta(days=1)
    groups = (
        (fleet_tenants, (locks // tenants) // DOORS_PER_PROPERTY, 52, 15, 7 * day, 6 * day),
        ([small], 1, 0, 9, day, timedelta(hours=20)),
        ([large], 1, page_history, 9, day, timedelta(hours=20)),
    )
    for tenant_ids, properties, past, ahead, stride, stay in groups:
        _populate_group(tenant_ids, t0=t0, properties=properties, past=past, ahead=ahead, stride=stride, stay=stay,
                        pins=pins, tokens=tokens, fingerprints=fingerprints)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = DEFAULT")
        for sql in deferred:
            started = time.perf_counter()
            cursor.execute(sql)
            if os.environ.get("BENCH_VERBOSE"):
                print(f"      {time.perf_counter() - started:6.1f}s {sql[:90]}")
    user = get_user_model().objects.create_user(PAGE_USER, password="bench")
    for tenant_id in (small, large):
        Membership.objects.create(user=user, tenant_id=tenant_id, role=Role.STAFF)
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


BULK_TABLES = ("locks_accesscode", "locks_lockcommand", "locks_activity", "providers_webhookevent", "portal_booking")


def _defer_indexes() -> list[str]:
    """Drop the secondary indexes of the big tables, and stop checking foreign keys, while the fleet is
    inserted (set-based inserts into indexed tables are several times slower): returns the statements that
    build the indexes again. Indexes behind constraints (primary keys, exclusions) stay."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET maintenance_work_mem = '256MB'")
        cursor.execute(
            """SELECT i.indexname, i.indexdef FROM pg_indexes i
               WHERE i.tablename = ANY(%s) AND NOT EXISTS (
                   SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.indexname))::regclass)""",
            [list(BULK_TABLES)],
        )
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _name, definition in indexes]


def _populate_group(
    tenant_ids: list[int], *, t0: datetime, properties: int, past: int, ahead: int, stride: timedelta,
    stay: timedelta, pins: list[str], tokens: list[str], fingerprints: list[str],
) -> None:
    p = {"tenants": tenant_ids, "t0": t0, "props": properties, "doors": DOORS_PER_PROPERTY, "past": past,
         "ahead": ahead, "stride": stride, "stay": stay, "req": REQUIREMENTS, "pins": pins, "tokens": tokens,
         "fps": fingerprints, "lead": timedelta(hours=1), "month": timedelta(days=30), "minute": timedelta(minutes=1),
         "people": [purpose for purpose, _ in PEOPLE], "holders": [holder for _, holder in PEOPLE]}
    statements = [
        # Properties, and two doors each on the tenant's simulator account, read within the last 5.5 h.
        """INSERT INTO portal_property (name, address, timezone, checkin_time, checkout_time, pin_policy, created_at,
               tenant_id, turnover_codes, backup_pool_size, guest_instructions, message_offset_hours,
               message_second_offset_hours)
           SELECT 'House ' || g, '', 'UTC', '16:00', '10:00', '', %(t0)s, t.id, false, 0, '', 24, 2
           FROM portal_tenant t CROSS JOIN generate_series(1, %(props)s) g WHERE t.id = ANY(%(tenants)s)""",
        """INSERT INTO locks_lock (vendor_device_id, name, model, requirements, native_scheduling, pin_readable, online,
               battery_level, last_seen_at, last_reconciled_at, reconcile_requested, created_at, property_id,
               provider_account_id, tenant_id, managed, lead_basis)
           SELECT 'dev-' || p.id || '-' || g, 'Door ' || g || ' of ' || p.name, 'Simulated nuki', %(req)s::jsonb,
               false, true, true, CASE WHEN (p.id * 2 + g) %% 97 = 0 THEN 0.1 ELSE 0.9 END, %(t0)s,
               %(t0)s - make_interval(mins => ((p.id * 2 + g) %% 330)::int), false, %(t0)s, p.id, a.id, p.tenant_id, true,
               '{}'
           FROM portal_property p JOIN providers_provideraccount a ON a.tenant_id = p.tenant_id
           CROSS JOIN generate_series(1, %(doors)s) g WHERE p.tenant_id = ANY(%(tenants)s)""",
        # Stays: k < 0 behind, k = 0 now, k > 0 ahead; the stay index is kept in the external ref.
        """INSERT INTO portal_booking (external_ref, source, guest_name, guest_phone, guest_email, check_in, check_out,
               status, notes, created_at, updated_at, property_id, tenant_id, channel_ref, guest_link_hash, language)
           SELECT 'stay.' || p.id || '.' || k, 'api', 'Guest ' || p.id || '-' || k, '', '',
               %(t0)s - interval '2 hours' + k * %(stride)s, %(t0)s - interval '2 hours' + k * %(stride)s + %(stay)s,
               'confirmed', '', LEAST(%(t0)s, %(t0)s + k * %(stride)s - %(month)s),
               LEAST(%(t0)s, %(t0)s + k * %(stride)s - %(month)s), p.id,
               p.tenant_id, '', '', ''
           FROM portal_property p CROSS JOIN generate_series(-%(past)s, %(ahead)s) k
           WHERE p.tenant_id = ANY(%(tenants)s)""",
        # A guest code per stay and door: removed behind, set now, unset (not yet due) ahead.
        """INSERT INTO locks_accesscode (purpose, code_type, name, pin, pin_fingerprint, starts_at, ends_at, program_at,
               status, is_scheduled_on_device, verification, vendor_code_ref, common_code_key, guest_notified,
               last_reason, created_at, updated_at, booking_id, tenant_id, lock_id, comes_back, holder_name)
           SELECT 'guest', 'time_bound', left(b.guest_name, 20), CASE WHEN s.k < 0 THEN '' ELSE (%(tokens)s::text[])[s.k + 1] END,
               CASE WHEN s.k < 0 THEN '' ELSE (%(fps)s::text[])[s.k + 1] END, b.check_in, b.check_out, b.check_in - %(lead)s,
               CASE WHEN s.k < 0 THEN 'removed' WHEN s.k = 0 THEN 'set' ELSE 'unset' END, false,
               CASE WHEN s.k = 0 THEN 'read_back' ELSE 'none' END, '', '', s.k = 0, '', b.created_at,
               CASE WHEN s.k < 0 THEN b.check_out + %(minute)s WHEN s.k = 0 THEN b.check_in - %(lead)s + %(minute)s
                    ELSE b.created_at END,
               b.id, b.tenant_id, l.id, false, ''
           FROM portal_booking b CROSS JOIN LATERAL (SELECT split_part(b.external_ref, '.', 3)::int AS k) s
           JOIN locks_lock l ON l.property_id = b.property_id WHERE b.tenant_id = ANY(%(tenants)s)""",
        # People's codes: ongoing, on every door for a month already.
        """INSERT INTO locks_accesscode (purpose, code_type, name, pin, pin_fingerprint, starts_at, ends_at, program_at,
               status, is_scheduled_on_device, verification, vendor_code_ref, common_code_key, guest_notified,
               last_reason, created_at, updated_at, booking_id, tenant_id, lock_id, comes_back, holder_name)
           SELECT (%(people)s::text[])[n], 'ongoing', (%(holders)s::text[])[n], (%(tokens)s::text[])[16 + n], (%(fps)s::text[])[16 + n],
               %(t0)s - %(month)s, NULL, %(t0)s - %(month)s, 'set', false, 'read_back', '', '', false, '',
               %(t0)s - %(month)s, %(t0)s - %(month)s, NULL, l.tenant_id, l.id, false, (%(holders)s::text[])[n]
           FROM locks_lock l CROSS JOIN generate_series(1, 4) n WHERE l.tenant_id = ANY(%(tenants)s)""",
        """UPDATE locks_accesscode SET vendor_code_ref = 'auth_b' || id
           WHERE tenant_id = ANY(%(tenants)s) AND status IN ('set', 'removed')""",
        # Each code that reached the lock: its create, and for ended ones its delete.
        """INSERT INTO locks_lockcommand (action, state, attempt, vendor_ref, sent_at, finished_at, reason, vendor_detail,
               request_summary, created_at, access_code_id, lock_id, tenant_id, target_ref, held_by, sent_code_ref,
               sent_ends_at, sent_name, sent_pin_fingerprint, sent_starts_at)
           SELECT a.action, 'succeeded', 1, 'req_' || c.id || a.action, a.at, a.at + %(minute)s, '', '', '{}', a.at,
               c.id, c.lock_id, c.tenant_id, '', '', c.vendor_code_ref, c.ends_at, c.name, c.pin_fingerprint, c.starts_at
           FROM locks_accesscode c CROSS JOIN LATERAL (VALUES ('create', c.program_at), ('delete', c.ends_at)) a(action, at)
           WHERE c.tenant_id = ANY(%(tenants)s) AND c.status IN ('set', 'removed')
             AND (a.action = 'create' OR c.status = 'removed')
           ORDER BY a.at""",
        """INSERT INTO locks_activity (verb, message, data, created_at, access_code_id, booking_id, tenant_id, lock_id,
               command_id)
           SELECT e.verb, e.message, '{}', e.at, c.id, c.booking_id, m.tenant_id, m.lock_id, m.id
           FROM locks_lockcommand m JOIN locks_accesscode c ON c.id = m.access_code_id
           CROSS JOIN LATERAL (VALUES ('command.sent', initcap(m.action) || ' sent to the vendor (attempt 1)', m.sent_at),
                                      ('code.status', 'Confirmed by the lock', m.finished_at)) e(verb, message, at)
           WHERE m.tenant_id = ANY(%(tenants)s) ORDER BY e.at""",
        """INSERT INTO locks_activity (verb, message, data, created_at, tenant_id, lock_id)
           SELECT 'lock.reconciled', 'Reconciled ' || l.name,
               '{"matched": [], "repushed": [], "desynced": [], "unmanaged": [], "readable": true}',
               l.last_reconciled_at - w * interval '7 days', l.tenant_id, l.id
           FROM locks_lock l CROSS JOIN generate_series(0, 51) w WHERE l.tenant_id = ANY(%(tenants)s)
           ORDER BY 4""",
        """INSERT INTO providers_webhookevent (vendor_event_id, received_at, payload, headers, processed_at, result,
               matched_code_id, matched_command_id, provider_account_id)
           SELECT 'ev-' || m.id, m.finished_at, jsonb_build_object('type', 'DEVICE_AUTHS', 'vendor_ref', m.vendor_ref),
               '{}', m.finished_at, 'matched', m.access_code_id, m.id, l.provider_account_id
           FROM locks_lockcommand m JOIN locks_lock l ON l.id = m.lock_id WHERE m.tenant_id = ANY(%(tenants)s)""",
        """INSERT INTO locks_lockissue (kind, status, first_seen_at, last_seen_at, occurrences, detail, data, lock_id,
               tenant_id)
           SELECT 'low_battery', 'open', %(t0)s - %(month)s, %(t0)s, 1, 'Battery at 10%%.', '{"battery_level": 0.1}',
               l.id, l.tenant_id
           FROM locks_lock l WHERE l.tenant_id = ANY(%(tenants)s) AND l.battery_level < 0.2""",
        # The simulated locks hold exactly the codes that are set on them.
        """INSERT INTO providers_simulateddevice (device_id, name, profile, requirements, faults, online, battery_level,
               codes, operations, outbox, stats, counter, serial, created_at, account_id, tenant_id)
           SELECT l.vendor_device_id, l.name, 'nuki', l.requirements - 'simulator_profile', '{}', true, l.battery_level,
               COALESCE(held.codes, '{}'), '[]', '[]', '{}', 0, 0, %(t0)s, l.provider_account_id, l.tenant_id
           FROM locks_lock l LEFT JOIN (
               SELECT c.lock_id, jsonb_object_agg(c.vendor_code_ref, jsonb_build_object(
                   'pin', (%(pins)s::text[])[array_position(%(fps)s::text[], c.pin_fingerprint)], 'name', c.name,
                   'starts_at', to_char(c.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
                   'ends_at', to_char(c.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
                   'status', 'set', 'code_id', c.id, 'external', false)) AS codes
               FROM locks_accesscode c WHERE c.tenant_id = ANY(%(tenants)s) AND c.status = 'set' GROUP BY c.lock_id
           ) held ON held.lock_id = l.id
           WHERE l.tenant_id = ANY(%(tenants)s)""",
    ]
    with connection.cursor() as cursor:
        for sql in statements:
            started = time.perf_counter()
            cursor.execute(sql, p)
            if os.environ.get("BENCH_VERBOSE"):
                print(f"      {time.perf_counter() - started:6.1f}s {cursor.rowcount:>9,} rows  {' '.join(sql.split()[:3])}")
