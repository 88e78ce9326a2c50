"""The order state machine and order numbers, without a database."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.orders import states
from app.orders.numbers import format_order_number, is_valid_order_number, luhn_digit, make_order_number

HAPPY_PATH = [states.AWAITING_CONFIRMATION, states.AWAITING_PAYMENT, states.PAID, states.ALLOCATED, states.SHIPPED,
              states.DELIVERED, states.COMPLETED]


def test_happy_path_is_legal():
    for current, target in itertools.pairwise(HAPPY_PATH):
        states.check_move(current, target)


@pytest.mark.parametrize("current", sorted(states.CANCELLABLE))
def test_cancel_before_shipping(current):
    assert states.can_move(current, states.CANCELLED)


@pytest.mark.parametrize("current", [states.SHIPPED, states.DELIVERED, states.COMPLETED, states.REFUNDED])
def test_no_cancel_after_shipping(current):
    with pytest.raises(states.IllegalTransition) as err:
        states.check_move(current, states.CANCELLED, action="cancel")
    assert err.value.status == 409
    assert err.value.code == "order_cannot_cancel"
    assert err.value.details["status"] == current


def test_cannot_skip_payment():
    assert not states.can_move(states.AWAITING_PAYMENT, states.ALLOCATED)
    assert not states.can_move(states.AWAITING_CONFIRMATION, states.PAID)
    assert not states.can_move(states.PAID, states.SHIPPED)


def test_terminal_states():
    assert not states.TRANSITIONS[states.COMPLETED]
    assert not states.TRANSITIONS[states.REFUNDED]
    assert states.TRANSITIONS[states.CANCELLED] == {states.REFUNDED}


def test_every_status_named_and_in_table():
    assert set(states.TRANSITIONS) == set(states.STATUSES) == set(states.STATUS_NAMES)
    for targets in states.TRANSITIONS.values():
        assert targets <= set(states.STATUSES)


@given(st.sampled_from(states.STATUSES), st.sampled_from(states.STATUSES))
def test_check_move_agrees_with_can_move(current, target):
    if states.can_move(current, target):
        states.check_move(current, target)
    else:
        with pytest.raises(states.IllegalTransition):
            states.check_move(current, target)


def test_order_number_readable_and_checked():
    from datetime import date

    number = make_order_number(date(2026, 11, 23), 482915)
    assert number.startswith("20261123482915") and len(number) == 15
    assert is_valid_order_number(number)
    assert format_order_number(number) == f"20261123-482915-{number[-1]}"
    assert is_valid_order_number(format_order_number(number))


@given(st.integers(min_value=100000, max_value=999999), st.integers(min_value=0, max_value=13))
def test_check_digit_catches_one_wrong_digit(serial, position):
    from datetime import date

    number = make_order_number(date(2026, 1, 5), serial)
    wrong = str((int(number[position]) + 1) % 10)
    assert not is_valid_order_number(number[:position] + wrong + number[position + 1:])


def test_luhn_known_value():
    assert luhn_digit("7992739871") == 3
