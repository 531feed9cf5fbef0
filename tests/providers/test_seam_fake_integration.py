"""The Seam adapter against Seam's own fake, @seamapi/fake-seam-connect (pinned in fake_seam/package.json).

The fake is installed into tests/providers/fake_seam/ with npm when node_modules is missing, started on
127.0.0.1 on a free port by fake_seam/start.mjs and seeded with the package's own seed (`fake.seed()`:
API key `seam_apikey1_token`, August locks `august_device_1`/`_2`). Skipped, with the reason, when
node/npm are missing or the install fails.

What the fake does not do: it never moves a code past `setting`/`unset` (no device behind it), and its
create answers without an action attempt. So these tests cover the request/response contract, ids,
errors and the read-back, not the device lifecycle.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from providers.base import Progress, ProviderError, Reason
from providers.registry import get_provider
from tests import factories

pytestmark = pytest.mark.node

FAKE_DIR = Path(__file__).parent / "fake_seam"
PACKAGE_DIR = FAKE_DIR / "node_modules" / "@seamapi" / "fake-seam-connect"
INSTALL_TIMEOUT = 600
START_TIMEOUT = 60
READY_MARKER = "FAKE_SEAM_READY "


def _install() -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot run Seam's fake")
    command = [
        npm,
        "ci" if (FAKE_DIR / "package-lock.json").exists() else "install",
        "--no-audit",
        "--no-fund",
    ]
    try:
        subprocess.run(
            command, cwd=FAKE_DIR, check=True, capture_output=True, text=True, timeout=INSTALL_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"installing @seamapi/fake-seam-connect took over {INSTALL_TIMEOUT}s")
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"installing @seamapi/fake-seam-connect failed: {(exc.stderr or exc.stdout)[-500:]}")


def _drain(stream, lines: queue.Queue[str]) -> None:
    # Keep reading after startup too, so the fake never blocks on a full pipe.
    for line in stream:
        lines.put(line)


@pytest.fixture(scope="module")
def fake_seam() -> Iterator[dict]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot run Seam's fake")
    if not PACKAGE_DIR.exists():
        _install()
    process = subprocess.Popen(
        [node, "start.mjs"], cwd=FAKE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_drain, args=(process.stdout, lines), daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    ready = None
    while ready is None and time.monotonic() < deadline and process.poll() is None:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if line.startswith(READY_MARKER):
            ready = json.loads(line[len(READY_MARKER) :])
    if ready is None:
        process.kill()
        process.wait(timeout=10)
        pytest.fail("Seam's fake did not start:\n" + "".join(seen[-20:]))
    try:
        yield ready
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def account(db, fake_seam):
    return factories.ProviderAccountFactory(
        vendor="seam",
        credentials={"api_key": fake_seam["seed"]["seam_apikey1_token"], "base_url": fake_seam["url"]},
    )


@pytest.fixture
def seam(account):
    return get_provider(account)


@pytest.fixture
def lock(account, fake_seam):
    return factories.LockFactory(
        tenant=account.tenant,
        provider_account=account,
        vendor_device_id=fake_seam["seed"]["august_device_1"],
        requirements={"code_lengths": [4, 6], "constraints": []},
    )


def new_code(lock, pin, *, name, days=None):
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3) if days else None
    return factories.AccessCodeFactory(
        tenant=lock.tenant,
        lock=lock,
        name=name,
        pin=pin,
        starts_at=starts,
        ends_at=starts + timedelta(days=days) if days else None,
    )


def test_it_lists_the_fakes_locks(seam, fake_seam):
    devices = {d.vendor_device_id: d for d in seam.list_devices()}

    front = devices[fake_seam["seed"]["august_device_1"]]
    assert front.name == "Front Door"
    assert front.native_scheduling is True  # August schedules natively
    assert front.pin_readable is True
    assert front.online is True


def test_it_creates_ongoing_and_time_bound_codes_and_reads_them_back(seam, lock):
    ongoing = new_code(lock, "618273", name="Staff Ongoing")
    bounded = new_code(lock, "739184", name="Guest Bounded", days=2)

    ongoing_receipt = seam.create_code(lock, ongoing)
    bounded_receipt = seam.create_code(lock, bounded)

    assert ongoing_receipt.progress == bounded_receipt.progress == Progress.PENDING
    assert ongoing_receipt.vendor_code_ref and bounded_receipt.vendor_code_ref
    observed = {o.vendor_code_ref: o for o in seam.read_codes(lock)}
    assert observed[ongoing_receipt.vendor_code_ref].pin == "618273"
    assert observed[ongoing_receipt.vendor_code_ref].starts_at is None
    read_bounded = observed[bounded_receipt.vendor_code_ref]
    assert (read_bounded.pin, read_bounded.name) == ("739184", "Guest Bounded")
    assert (read_bounded.starts_at, read_bounded.ends_at) == (bounded.starts_at, bounded.ends_at)
    assert read_bounded.managed is True


def test_it_reports_a_repeated_pin_as_duplicate_pin(seam, lock):
    first = new_code(lock, "951357", name="First Guest")
    seam.create_code(lock, first)
    # Our database forbids two live codes sharing a PIN on a lock, so this one is never saved: it stands
    # for a code someone set on the lock outside Lockstep.
    second = factories.AccessCodeFactory.build(
        tenant=lock.tenant, lock=lock, name="Second Guest", pin="951357", starts_at=None, ends_at=None
    )

    with pytest.raises(ProviderError) as caught:
        seam.create_code(lock, second)

    assert caught.value.reason == Reason.DUPLICATE_PIN
    assert caught.value.transient is False
    assert "951357" not in caught.value.vendor_detail


def test_it_updates_a_code(seam, lock):
    code = new_code(lock, "862491", name="Changing Guest", days=2)
    code.vendor_code_ref = seam.create_code(lock, code).vendor_code_ref
    code.ends_at = code.ends_at + timedelta(days=1)
    code.name = "Changed Guest"

    receipt = seam.update_code(lock, code)

    assert receipt.progress == Progress.PENDING
    assert receipt.vendor_ref  # the fake's update answers an action attempt
    observed = {o.vendor_code_ref: o for o in seam.read_codes(lock)}[code.vendor_code_ref]
    assert (observed.name, observed.ends_at) == ("Changed Guest", code.ends_at)


def test_it_deletes_a_code_and_sees_it_gone(seam, lock):
    code = new_code(lock, "426815", name="Leaving Guest", days=1)
    code.vendor_code_ref = seam.create_code(lock, code).vendor_code_ref

    receipt = seam.delete_code(lock, code)
    command = factories.LockCommandFactory(
        tenant=lock.tenant, lock=lock, access_code=code, action="delete", vendor_ref=receipt.vendor_ref
    )
    outcome = seam.command_status(lock, command)

    assert receipt.progress == Progress.PENDING and receipt.vendor_ref
    assert outcome.progress == Progress.DONE
    assert code.vendor_code_ref not in {o.vendor_code_ref for o in seam.read_codes(lock)}
    assert seam.delete_code(lock, code).progress == Progress.DONE  # deleting again: already gone


def test_it_keeps_a_code_the_fake_is_still_setting_pending(seam, lock):
    code = new_code(lock, "573926", name="Waiting Guest")
    code.vendor_code_ref = seam.create_code(lock, code).vendor_code_ref
    command = factories.LockCommandFactory(tenant=lock.tenant, lock=lock, access_code=code, action="create")

    outcome = seam.command_status(lock, command)

    assert (outcome.progress, outcome.vendor_code_ref) == (Progress.PENDING, code.vendor_code_ref)


def test_it_reports_a_wrong_api_key_as_auth_failed(fake_seam, db):
    account = factories.ProviderAccountFactory(
        vendor="seam", credentials={"api_key": "seam_wrong_key", "base_url": fake_seam["url"]}
    )

    with pytest.raises(ProviderError) as caught:
        get_provider(account).check_connection()

    assert caught.value.reason == Reason.AUTH_FAILED
    assert "seam_wrong_key" not in caught.value.vendor_detail
