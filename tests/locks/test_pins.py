from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from locks import pins
from locks.models import CodeStatus
from tests import factories

PIN_CONSTRAINTS = [*sorted(pins.PIN_RULES), "unique_first_four_digits"]
NOT_PIN_RULES = ["start_date_in_future", "name_must_be_unique", "pin_code_matches_existing_set", "made_up_rule"]
NUKI = {"code_lengths": [6], "max_active_codes": 100, "constraints": ["no_zeros", "cannot_start_with_12"]}
SCHLAGE = {"code_lengths": [4, 5, 6, 7, 8], "constraints": ["unique_first_four_digits"]}
ANY = {"code_lengths": [4, 5, 6, 7, 8], "constraints": []}

profiles = st.fixed_dictionaries(
    {
        "code_lengths": st.lists(st.integers(4, 8), min_size=1, max_size=5, unique=True),
        "constraints": st.lists(st.sampled_from(PIN_CONSTRAINTS + NOT_PIN_RULES), unique=True, max_size=6),
    }
)
pin_text = st.text(alphabet="0123456789", min_size=4, max_size=8)
fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _climbs_or_falls_by_one_three_times(pin: str) -> bool:
    digits = [int(d) for d in pin]
    return any(
        digits[i + 1] - digits[i] == digits[i + 2] - digits[i + 1] in (-1, 1) for i in range(len(digits) - 2)
    )


# --- generation: properties over random lock profiles -------------------------------------------


@fast
@given(requirements=profiles, taken=st.lists(pin_text, max_size=30))
def test_it_generates_pins_that_pass_validation_and_are_not_taken(requirements, taken):
    pin = pins.generate_pin(requirements, taken=taken)

    assert pins.validate_pin(pin, requirements, taken=taken) == []
    assert pin not in taken
    assert len(pin) in requirements["code_lengths"]
    assert pin.isdigit()


@fast
@given(requirements=profiles, count=st.integers(2, 40))
def test_it_never_repeats_a_pin_or_a_prefix_when_taken_pins_are_fed_back(requirements, count):
    taken: list[str] = []
    for _ in range(count):
        taken.append(pins.generate_pin(requirements, taken=taken))

    assert len(set(taken)) == len(taken)
    if "unique_first_four_digits" in requirements["constraints"]:
        assert len({pin[:4] for pin in taken}) == len(taken)


@fast
@given(taken=st.lists(st.text(alphabet="123456789", min_size=6, max_size=6), max_size=50))
def test_it_gives_nuki_six_digit_pins_without_zeros_that_never_start_with_12(taken):
    pin = pins.generate_pin(NUKI, taken=taken)

    assert len(pin) == 6
    assert set(pin) <= set("123456789")
    assert not pin.startswith("12")
    assert pin not in taken


def test_it_fills_a_schlage_lock_with_pins_whose_first_four_digits_all_differ():
    taken: list[str] = []
    for _ in range(100):  # the Encode's capacity
        taken.append(pins.generate_pin(SCHLAGE, taken=taken, length=4))

    assert len({pin[:4] for pin in taken}) == 100
    with pytest.raises(pins.PinRejected, match="same four digits"):
        pins.assert_pin_usable(taken[0] + "57", SCHLAGE, taken)


@fast
@given(requirements=profiles, pin=pin_text)
def test_it_honours_every_pin_constraint_it_knows(requirements, pin):
    # Cross-check the table against the constraints' meaning, written out independently.
    if pins.validate_pin(pin, requirements):
        return
    names = set(requirements["constraints"])
    if "no_zeros" in names:
        assert "0" not in pin
    if "cannot_start_with_12" in names:
        assert not pin.startswith("12")
    if "cannot_contain_089" in names:
        assert not set(pin) & set("089")
    if "cannot_contain_0789" in names:
        assert not set(pin) & set("0789")
    if "at_least_three_unique_digits" in names:
        assert len(set(pin)) >= 3
    if "no_ascending_or_descending_sequence" in names:
        assert not _climbs_or_falls_by_one_three_times(pin)
    if "no_triple_consecutive_ints" in names:
        assert not _climbs_or_falls_by_one_three_times(pin)
        assert not any(pin[i] == pin[i + 1] == pin[i + 2] for i in range(len(pin) - 2))


def test_it_picks_the_asked_length_then_the_tenant_default_then_six_then_the_smallest_of_four_or_more():
    assert pins.pick_length(ANY, length=8, default_length=5) == 8
    assert pins.pick_length({"code_lengths": [4, 6]}, length=8, default_length=4) == 4
    assert pins.pick_length(ANY) == 6
    assert pins.pick_length({"code_lengths": [3, 5, 8]}) == 5
    assert pins.pick_length({"code_lengths": [3]}) == 3
    assert pins.pick_length({}) == 6  # no code_lengths: 4–8 assumed
    assert len(pins.generate_pin({"code_lengths": [7, 8]}, default_length=8)) == 8


def test_it_refuses_to_generate_for_locks_that_choose_their_own_pin():
    lock_picks = {"code_lengths": [6], "constraints": [{"constraint_type": "cannot_specify_pin_code"}]}

    assert pins.lock_chooses_pin(lock_picks)
    assert not pins.lock_chooses_pin(NUKI)
    with pytest.raises(pins.NoPinAvailable):
        pins.generate_pin(lock_picks)
    assert pins.validate_pin("483920", lock_picks) == ["This lock chooses its own PINs; a PIN cannot be set on it."]
    assert pins.phone_pin("+351 912 345 678", {**lock_picks, "code_lengths": [4]}) is None
    assert pins.common_pin([lock_picks, ANY]) is None


def test_it_gives_up_with_no_pin_available_when_the_lock_is_full():
    one_length = {"code_lengths": [4], "constraints": ["cannot_contain_0789", "at_least_three_unique_digits",
                                                       "no_triple_consecutive_ints"]}
    every_pin = [f"{n:04d}" for n in range(10000)]

    with pytest.raises(pins.NoPinAvailable):
        pins.generate_pin(one_length, taken=every_pin)


def test_it_repeats_the_same_pins_under_the_same_seed_and_restores_system_randomness_after():
    with pins.use_rng(random.Random(42)):
        first = [pins.generate_pin(NUKI) for _ in range(5)]
    with pins.use_rng(random.Random(42)):
        second = [pins.generate_pin(NUKI) for _ in range(5)]

    assert first == second
    assert pins._current_rng() is pins._system_rng


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pin",
    ["1111", "000000", "1234", "4321", "123456", "987654", "7890", "8901", "1212", "123123", "12121",
     "112233", "2580", "1004", "2000", "6969", "1122", "1313", "4444", "1987", "2024", "12345678"],
)
def test_it_rejects_trivial_pins_whatever_the_lock_allows(pin):
    errors = pins.validate_pin(pin, ANY)

    assert errors
    assert all("harder to guess" in error for error in errors)


@pytest.mark.parametrize("pin", ["4839", "72916", "483920", "5093817", "61830472"])
def test_it_accepts_ordinary_pins(pin):
    assert pins.validate_pin(pin, ANY) == []


def test_it_explains_each_problem_in_words_staff_understand():
    assert pins.validate_pin("12a4", ANY) == ["The PIN must contain digits only."]
    assert pins.validate_pin("４８３９", ANY) == ["The PIN must contain digits only."]  # full-width digits
    assert pins.validate_pin("48392", NUKI) == ["The PIN must be 6 digits long."]
    assert pins.validate_pin("483", ANY) == ["The PIN must be 4 to 8 digits long."]
    assert pins.validate_pin("4839201", {"code_lengths": [4, 6, 8]}) == ["The PIN must be 4, 6 or 8 digits long."]
    assert pins.validate_pin("129384", NUKI) == ["The PIN cannot start with 12."]
    assert pins.validate_pin("483920", NUKI) == ["The PIN cannot contain the digit 0."]
    assert pins.validate_pin("483920", ANY, taken=["483920"]) == ["This PIN is already in use on this lock."]


def test_it_ignores_constraints_that_are_not_pin_rules():
    requirements = {"code_lengths": [6], "constraints": [*NOT_PIN_RULES, {"constraint_type": "name_length",
                                                                         "max_length": 10}]}

    assert pins.validate_pin("483920", requirements) == []
    assert len(pins.generate_pin(requirements)) == 6


def test_it_raises_pin_rejected_with_every_reason_for_a_pin_a_person_typed():
    with pytest.raises(pins.PinRejected) as caught:
        pins.assert_pin_usable("120000", NUKI, ["120000"])

    assert isinstance(caught.value, ValueError)
    assert caught.value.errors == [
        "The PIN cannot start with 12.",
        "The PIN cannot contain the digit 0.",
        "This PIN is already in use on this lock.",
    ]
    pins.assert_pin_usable("483927", NUKI, ["583927"])  # fine: raises nothing


# --- phone and common PINs ----------------------------------------------------------------------


def test_it_uses_the_last_four_digits_of_the_guests_phone():
    assert pins.phone_pin("+1 (555) 010-4827", ANY) == "4827"


@pytest.mark.parametrize(
    ("phone", "requirements", "taken"),
    [
        ("+1 555 010 1234", ANY, []),  # trivial
        ("+1 555 010 4827", ANY, ["4827"]),  # taken
        ("+1 555 010 4827", SCHLAGE, ["482791"]),  # same first four digits as a live code
        ("+1 555 010 4827", NUKI, []),  # lock takes 6 digits only
        ("+49 30 4820", {"code_lengths": [4], "constraints": ["no_zeros"]}, []),  # breaks a rule
        ("12-3", ANY, []),  # not enough digits
        ("", ANY, []),
    ],
)
def test_it_falls_back_to_none_when_the_phone_pin_cannot_be_used(phone, requirements, taken):
    assert pins.phone_pin(phone, requirements, taken=taken) is None


@fast
@given(
    requirements_list=st.lists(profiles, min_size=1, max_size=4),
    taken=st.lists(st.lists(pin_text, max_size=10), max_size=4),
)
def test_it_finds_a_common_pin_valid_on_every_lock_or_says_none(requirements_list, taken):
    taken = taken[: len(requirements_list)]
    pin = pins.common_pin(requirements_list, taken_per_lock=taken)

    shared = set.intersection(*(set(r["code_lengths"]) for r in requirements_list))
    if pin is None:
        assert not shared
        return
    padded = taken + [[]] * (len(requirements_list) - len(taken))
    for requirements, lock_taken in zip(requirements_list, padded, strict=False):
        assert pins.validate_pin(pin, requirements, taken=lock_taken) == []


def test_it_finds_no_common_pin_when_the_locks_share_no_length():
    assert pins.common_pin([NUKI, {"code_lengths": [4]}]) is None
    assert pins.common_pin([]) is None


def test_it_refuses_taken_lists_for_more_locks_than_it_was_given():
    with pytest.raises(ValueError, match="more entries"):
        pins.common_pin([NUKI], taken_per_lock=[[], []])


def test_it_picks_a_common_pin_that_satisfies_nuki_and_schlage_together():
    pin = pins.common_pin([NUKI, SCHLAGE], taken_per_lock=[["483927"], ["7391"]])

    assert len(pin) == 6
    assert "0" not in pin and not pin.startswith("12")
    assert pin != "483927" and not pin.startswith("7391")


# --- names --------------------------------------------------------------------------------------


def test_it_fits_names_to_the_locks_limits():
    assert pins.fit_name("  Ana   Costa 12–15 Nov stay ", {"name_max_length": 14}) == "Ana Costa 12–1"
    assert pins.fit_name("Ana Costa", {"name_max_length": 4}) == "Ana"  # no trailing space
    assert pins.fit_name("Bo", {"name_min_length": 4}) == "Bo--"
    assert pins.fit_name("   ", {}) == "Code"
    seam_style = {"constraints": [{"constraint_type": "name_length", "min_length": 3, "max_length": 5}]}
    assert pins.fit_name("Chloe Martin", seam_style) == "Chloe"
    assert pins.fit_name("A", seam_style) == "A--"


def test_a_second_code_of_the_same_holder_gets_a_name_of_its_own_only_where_names_must_be_unique():
    assert pins.name_beside("Ana Costa", {}) == "Ana Costa"
    unique = {"constraints": ["name_must_be_unique", {"constraint_type": "name_length", "max_length": 14}]}
    assert pins.name_beside("Ana Costa", unique) == "Ana (new PIN)"
    assert pins.name_beside("Ana Costa", {"constraints": ["name_must_be_unique"]}) == "Ana Costa (new PIN)"


# --- the selector -------------------------------------------------------------------------------


def test_it_lists_the_pins_of_live_codes_on_the_lock_only(world):
    lock = world.lock
    staff = factories.AccessCodeFactory(tenant=world.seaside, lock=lock, pin="739184", purpose="staff",
                                        status=CodeStatus.SET)
    factories.AccessCodeFactory(tenant=world.seaside, lock=lock, pin="615273", status=CodeStatus.REMOVING)
    factories.AccessCodeFactory(tenant=world.seaside, lock=lock, pin="528361", status=CodeStatus.REMOVED)
    factories.AccessCodeFactory(tenant=world.seaside, lock=lock, pin="917352", status=CodeStatus.FAILED)
    factories.AccessCodeFactory(tenant=world.seaside, lock=lock, pin="", status=CodeStatus.UNSET)
    factories.AccessCodeFactory(tenant=world.seaside, lock=world.other_lock, pin="846271")

    assert sorted(pins.live_pins_on_lock(lock)) == ["483920", "615273", "739184"]
    assert sorted(pins.live_pins_on_lock(lock, exclude_code_id=staff.pk)) == ["483920", "615273"]
    assert pins.generate_pin(lock.requirements, taken=pins.live_pins_on_lock(lock)) not in {
        "483920", "615273", "739184"
    }
