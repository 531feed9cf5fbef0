"""PIN generation and validation against a lock's `requirements` (DESIGN §4 "PINs").

A lock's requirements are a dict, as `DeviceInfo.requirements` reports them:

    {"code_lengths": [4, 5, 6], "max_active_codes": 30,
     "constraints": ["no_zeros", "cannot_start_with_12", ...],
     "name_max_length": 20, "name_min_length": 1}

Constraint entries may also be Seam-style objects (`{"constraint_type": "name_length", "max_length": 20}`).
Constraint names we do not know, and names that are not PIN rules (`start_date_in_future`, `name_*`,
`pin_code_matches_existing_set`), are ignored by PIN validation rather than crashing it.

Everything here is a pure function of its arguments, except `live_pins_on_lock`, the one selector that
reads the database. Randomness comes from `secrets.SystemRandom()`; `use_rng()` swaps in a seeded
`random.Random` so the simulator and tests can repeat a run.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import random
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from locks.models import Lock

DEFAULT_CODE_LENGTHS: tuple[int, ...] = (4, 5, 6, 7, 8)
PREFERRED_LENGTH = 6
MIN_SENSIBLE_LENGTH = 4
# Random draws before giving up. Valid PINs are dense (thousands per length even under every
# constraint), so running out means the lock is genuinely crowded, not that we were unlucky.
MAX_TRIES = 2000

NAME_FILLER = "-"
EMPTY_NAME = "Code"


class PinRejected(ValueError):
    """A PIN someone chose (a user, the API) cannot go on this lock. `errors` says why, for people."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


class NoPinAvailable(ValueError):
    """No PIN can be generated: the lock picks its own, or no valid, free PIN was found."""


# --- requirements -------------------------------------------------------------------------------


def _constraint_names(requirements: Mapping[str, Any]) -> frozenset[str]:
    names: set[str] = set()
    for entry in requirements.get("constraints") or ():
        if isinstance(entry, str):
            names.add(entry)
        elif isinstance(entry, Mapping) and isinstance(entry.get("constraint_type"), str):
            names.add(entry["constraint_type"])
    return frozenset(names)


def supported_lengths(requirements: Mapping[str, Any]) -> tuple[int, ...]:
    """The PIN lengths the lock accepts, ascending; 4–8 when the vendor did not say."""
    lengths = sorted({int(n) for n in requirements.get("code_lengths") or () if int(n) > 0})
    return tuple(lengths) or DEFAULT_CODE_LENGTHS


def lock_chooses_pin(requirements: Mapping[str, Any]) -> bool:
    """True for locks that assign their own PIN (`cannot_specify_pin_code`): send no PIN at all."""
    return "cannot_specify_pin_code" in _constraint_names(requirements)


def pick_length(
    requirements: Mapping[str, Any], *, length: int | None = None, default_length: int | None = None
) -> int:
    """The length to generate: `length` if the lock supports it, else the tenant's `default_length` if
    supported, else 6 if supported, else the smallest supported length of at least 4, else the smallest
    supported length (a lock that only takes 3 digits gets 3 digits)."""
    lengths = supported_lengths(requirements)
    for wanted in (length, default_length, PREFERRED_LENGTH):
        if wanted is not None and wanted in lengths:
            return wanted
    sensible = [n for n in lengths if n >= MIN_SENSIBLE_LENGTH]
    return sensible[0] if sensible else lengths[0]


# --- shapes that are never acceptable -----------------------------------------------------------


def _is_all_same(pin: str) -> bool:
    return len(set(pin)) == 1


def _diffs(pin: str) -> list[int]:
    return [int(b) - int(a) for a, b in itertools.pairwise(pin)]


def _steps(pin: str) -> list[int]:
    """Differences between neighbouring digits, modulo 10 (so 9→0 counts as +1)."""
    return [d % 10 for d in _diffs(pin)]


def _has_three_in_a_row(pin: str, diffs: frozenset[int]) -> bool:
    """Three neighbouring digits that move by the same difference, one of `diffs` (0 = repeat)."""
    return any(a == b and a in diffs for a, b in itertools.pairwise(_diffs(pin)))


def _is_straight_run(pin: str) -> bool:
    # 1234, 4321, 123456, and wrapping ones such as 7890 / 8901 (0 follows 9 on a keypad).
    steps = set(_steps(pin))
    return steps in ({1}, {9})


def _is_repetition(pin: str) -> bool:
    # 1212, 123123, 12121: the PIN is a shorter unit repeated (at least twice over).
    return any(pin == (pin[:unit] * len(pin))[: len(pin)] for unit in range(1, len(pin) // 2 + 1))


def _is_doubled_run(pin: str) -> bool:
    # 112233, 332211: each digit twice, climbing or falling by one.
    if len(pin) < 4 or len(pin) % 2:
        return False
    pairs = [pin[i : i + 2] for i in range(0, len(pin), 2)]
    if any(p[0] != p[1] for p in pairs):
        return False
    return _is_straight_run("".join(p[0] for p in pairs))


COMMON_PINS: frozenset[str] = frozenset(
    {
        "0000", "1111", "1234", "1004", "1122", "1212", "1313", "1342", "2000", "2001", "2222",
        "2580", "0852", "3333", "4321", "4444", "5555", "5683", "6666", "6969", "7777", "8888",
        "9999", "1010", "0007", "1357", "2468", "7410", "0987",
        "000000", "111111", "112233", "121212", "123123", "123321", "123456", "147258", "147852",
        "159753", "258369", "654321", "666666", "696969", "789456", "101010", "520520", "987654",
        "12345678", "87654321", "11223344", "12341234",
        # years people pick: 1940–2030
        *(str(year) for year in range(1940, 2031)),
    }
)

TRIVIAL_SHAPES: dict[str, Callable[[str], bool]] = {
    "all the same digit": _is_all_same,
    "a straight run of digits": _is_straight_run,
    "a repeated pattern": _is_repetition,
    "pairs of digits in a row": _is_doubled_run,
    "one of the most common PINs": COMMON_PINS.__contains__,
}


# --- vendor constraints, as a table -------------------------------------------------------------


def _no_triple_consecutive_ints(pin: str) -> bool:
    # Seam: "No more than 3 digits in a row can be consecutive or the same". Read strictly — no three
    # digits in a row that climb (123), fall (321) or repeat (111) — because a PIN that passes the strict
    # reading passes the loose one too.
    return not _has_three_in_a_row(pin, frozenset({-1, 0, 1}))


def _no_ascending_or_descending_sequence(pin: str) -> bool:
    # Tedee/Korelock publish no exact rule; we refuse any three climbing or falling digits (123, 987),
    # the strictest plausible reading, so what we generate is accepted whatever the lock means.
    return not _has_three_in_a_row(pin, frozenset({-1, 1}))


@dataclass(frozen=True)
class PinRule:
    check: Callable[[str], bool]  # True = the PIN is acceptable
    message: str


PIN_RULES: dict[str, PinRule] = {
    "no_zeros": PinRule(lambda pin: "0" not in pin, "The PIN cannot contain the digit 0."),
    "cannot_start_with_12": PinRule(lambda pin: not pin.startswith("12"), "The PIN cannot start with 12."),
    "no_triple_consecutive_ints": PinRule(
        _no_triple_consecutive_ints,
        "The PIN cannot have three digits in a row that climb, fall or repeat (like 123, 321 or 111).",
    ),
    "no_all_same_digits": PinRule(lambda pin: not _is_all_same(pin), "The PIN cannot be one digit repeated."),
    # TTLock keypads without these keys: the digits are refused, which also rules out the sequences.
    "cannot_contain_089": PinRule(
        lambda pin: not set(pin) & set("089"), "The PIN cannot contain the digits 0, 8 or 9 on this lock."
    ),
    "cannot_contain_0789": PinRule(
        lambda pin: not set(pin) & set("0789"), "The PIN cannot contain the digits 0, 7, 8 or 9 on this lock."
    ),
    "no_ascending_or_descending_sequence": PinRule(
        _no_ascending_or_descending_sequence,
        "The PIN cannot contain three digits that climb or fall in a row (like 123 or 987).",
    ),
    "at_least_three_unique_digits": PinRule(
        lambda pin: len(set(pin)) >= 3, "The PIN needs at least three different digits."
    ),
}

# Rules that need the PINs already on the lock; checked in `_PinChecker`, listed so they are not
# mistaken for unknown names.
TAKEN_RULES = frozenset({"unique_first_four_digits"})


# --- validation ---------------------------------------------------------------------------------


class _PinChecker:
    """Validation with everything that does not depend on the PIN worked out once (generation calls
    this thousands of times for one lock)."""

    def __init__(self, requirements: Mapping[str, Any], taken: Iterable[str]) -> None:
        names = _constraint_names(requirements)
        self.lengths = supported_lengths(requirements)
        self.lock_chooses = "cannot_specify_pin_code" in names
        self.rules = [PIN_RULES[name] for name in sorted(names) if name in PIN_RULES]
        self.taken = frozenset(str(p) for p in taken if p)
        self.unique_prefix = "unique_first_four_digits" in names
        self.taken_prefixes = frozenset(p[:4] for p in self.taken) if self.unique_prefix else frozenset()

    def errors(self, pin: str) -> list[str]:
        if self.lock_chooses:
            return ["This lock chooses its own PINs; a PIN cannot be set on it."]
        if not pin.isascii() or not pin.isdigit():
            return ["The PIN must contain digits only."]
        errors: list[str] = []
        if len(pin) not in self.lengths:
            errors.append(f"The PIN must be {_say_lengths(self.lengths)} digits long.")
        errors += [f"The PIN is {shape}; choose one that is harder to guess."
                   for shape, matches in TRIVIAL_SHAPES.items() if matches(pin)]
        errors += [rule.message for rule in self.rules if not rule.check(pin)]
        if pin in self.taken:
            errors.append("This PIN is already in use on this lock.")
        elif self.unique_prefix and pin[:4] in self.taken_prefixes:
            errors.append("Another PIN on this lock starts with the same four digits; this lock needs them to differ.")
        return errors


def _say_lengths(lengths: Sequence[int]) -> str:
    if len(lengths) == 1:
        return str(lengths[0])
    if list(lengths) == list(range(lengths[0], lengths[-1] + 1)):
        return f"{lengths[0]} to {lengths[-1]}"
    return ", ".join(map(str, lengths[:-1])) + f" or {lengths[-1]}"


def validate_pin(pin: str, requirements: Mapping[str, Any], *, taken: Iterable[str] = ()) -> list[str]:
    """Human-readable reasons `pin` cannot go on a lock with `requirements`; empty means it can.

    `taken` are the PINs of the lock's live codes (see `live_pins_on_lock`); pass them to check
    uniqueness, including Schlage's `unique_first_four_digits`."""
    return _PinChecker(requirements, taken).errors(str(pin))


def assert_pin_usable(pin: str, requirements: Mapping[str, Any], taken: Iterable[str] = ()) -> None:
    """Raise `PinRejected` when a PIN chosen by a person or the API cannot go on the lock."""
    errors = validate_pin(pin, requirements, taken=taken)
    if errors:
        raise PinRejected(errors)


# --- generation ---------------------------------------------------------------------------------

_rng: contextvars.ContextVar[random.Random | None] = contextvars.ContextVar("lockstep_pin_rng", default=None)
_system_rng = secrets.SystemRandom()


def _current_rng() -> random.Random:
    return _rng.get() or _system_rng


@contextlib.contextmanager
def use_rng(rng: random.Random) -> Iterator[random.Random]:
    """Generate PINs from `rng` inside the block (the simulator's seeded runs); restored on exit.

    Never use outside tests and the simulator: real PINs must come from `secrets`."""
    token = _rng.set(rng)
    try:
        yield rng
    finally:
        _rng.reset(token)


def _allowed_digits(requirements: Mapping[str, Any]) -> str:
    # Draw only from digits the lock accepts, so constrained locks do not waste draws.
    names = _constraint_names(requirements)
    banned = set()
    if "no_zeros" in names:
        banned |= {"0"}
    if "cannot_contain_089" in names:
        banned |= set("089")
    if "cannot_contain_0789" in names:
        banned |= set("0789")
    return "".join(d for d in "0123456789" if d not in banned)


def generate_pin(
    requirements: Mapping[str, Any],
    *,
    taken: Iterable[str] = (),
    length: int | None = None,
    default_length: int | None = None,
) -> str:
    """A random PIN valid for the lock and not in `taken`. Length as `pick_length` chooses it.

    Raises `NoPinAvailable` when the lock picks its own PINs (`lock_chooses_pin`) or when no free PIN
    turns up within `MAX_TRIES` draws (a lock so full it needs a person)."""
    if lock_chooses_pin(requirements):
        raise NoPinAvailable("This lock chooses its own PINs; send the code without one.")
    checker = _PinChecker(requirements, taken)
    size = pick_length(requirements, length=length, default_length=default_length)
    digits = _allowed_digits(requirements)
    rng = _current_rng()
    for _ in range(MAX_TRIES):
        pin = "".join(rng.choice(digits) for _ in range(size))
        if not checker.errors(pin):
            return pin
    raise NoPinAvailable(f"No free {size}-digit PIN was found for this lock after {MAX_TRIES} tries.")


_NON_DIGITS = re.compile(r"\D")


def phone_pin(phone: str, requirements: Mapping[str, Any], *, taken: Iterable[str] = ()) -> str | None:
    """The last four digits of `phone` when the lock takes 4-digit PINs and they are valid and free;
    otherwise None, and the caller falls back to `generate_pin`."""
    digits = _NON_DIGITS.sub("", phone or "")
    if len(digits) < 4 or 4 not in supported_lengths(requirements):
        return None
    pin = digits[-4:]
    return None if validate_pin(pin, requirements, taken=taken) else pin


def common_pin(
    requirements_list: Sequence[Mapping[str, Any]],
    *,
    taken_per_lock: Sequence[Iterable[str]] = (),
    length: int | None = None,
    default_length: int | None = None,
) -> str | None:
    """One PIN valid on every lock (`requirements_list[i]` with `taken_per_lock[i]`), or None when the
    locks share no length, one of them picks its own PINs, or no PIN fits them all."""
    if len(taken_per_lock) > len(requirements_list):
        raise ValueError("taken_per_lock has more entries than requirements_list; they must line up")
    if not requirements_list or any(lock_chooses_pin(r) for r in requirements_list):
        return None
    taken_lists = [list(t) for t in taken_per_lock] + [[] for _ in range(len(requirements_list) - len(taken_per_lock))]
    common_lengths = set.intersection(*(set(supported_lengths(r)) for r in requirements_list))
    if not common_lengths:
        return None
    merged = {
        "code_lengths": sorted(common_lengths),
        "constraints": sorted(set().union(*(_constraint_names(r) for r in requirements_list))),
    }
    all_taken = [pin for taken in taken_lists for pin in taken]
    try:
        pin = generate_pin(merged, taken=all_taken, length=length, default_length=default_length)
    except NoPinAvailable:
        return None
    # The merged profile is stricter than each lock's; checking each lock anyway keeps this honest.
    if any(validate_pin(pin, r, taken=t) for r, t in zip(requirements_list, taken_lists, strict=True)):
        return None
    return pin


# --- names --------------------------------------------------------------------------------------


def name_length_limits(requirements: Mapping[str, Any]) -> tuple[int, int | None]:
    """(min, max) characters for the code's name on the lock; max None means no limit known."""
    low = requirements.get("name_min_length")
    high = requirements.get("name_max_length")
    for entry in requirements.get("constraints") or ():
        if isinstance(entry, Mapping) and entry.get("constraint_type") == "name_length":
            low = entry.get("min_length", low)
            high = entry.get("max_length", high)
    return int(low or 0), (int(high) if high else None)


def name_beside(name: str, requirements: Mapping[str, Any], *, suffix: str = " (new PIN)") -> str:
    """The name for a second code of the same holder on the lock: `name` itself, unless the lock wants every
    name unique (`name_must_be_unique`); then `name` with `suffix`, the name cut to leave room for it."""
    if "name_must_be_unique" not in _constraint_names(requirements):
        return name
    high = name_length_limits(requirements)[1]
    room = max(1, high - len(suffix)) if high is not None else len(name)
    return fit_name(name[:room].rstrip() + suffix, requirements)


def fit_name(name: str, requirements: Mapping[str, Any]) -> str:
    """`name` made to fit the lock: whitespace collapsed, cut to the maximum, padded with '-' to the
    minimum ("Code" when nothing is left)."""
    low, high = name_length_limits(requirements)
    fitted = " ".join(name.split()) or EMPTY_NAME
    if high is not None:
        fitted = fitted[:high].rstrip() or fitted[:high]
    return fitted.ljust(low, NAME_FILLER)


# --- the one selector ---------------------------------------------------------------------------


def live_pins_on_lock(lock: Lock, *, exclude_code_id: int | None = None) -> list[str]:
    """Decrypted PINs of the lock's live codes (unset, setting, set, removing), guest, staff and backup
    alike, and of the codes seen on the lock that Lockstep does not manage (open `unmanaged_code` issues)
    — every PIN that opens this door is taken. The `taken` list for generation and validation.
    `exclude_code_id` leaves out the code whose PIN is being replaced."""
    # Imported here so the pure functions above stay importable without the app registry (the
    # simulator and adapters use them at import time).
    from locks.models import LIVE_CODE_STATUSES, AccessCode, IssueKind, IssueStatus, LockIssue
    from portal.encryption import decrypt_str

    codes = AccessCode.objects.filter(lock=lock, status__in=LIVE_CODE_STATUSES).exclude(pin="")
    if exclude_code_id is not None:
        codes = codes.exclude(pk=exclude_code_id)
    taken = [pin for pin in codes.values_list("pin", flat=True) if pin]
    unmanaged = LockIssue.objects.filter(lock=lock, kind=IssueKind.UNMANAGED_CODE, status=IssueStatus.OPEN)
    for data in unmanaged.values_list("data", flat=True):
        taken += [decrypt_str(item["pin_token"]) for item in (data or {}).get("codes", []) if item.get("pin_token")]
    return taken
