"""The test session's load is held in every phase (tests/conftest.py): a module fixture's set-up, a test's body."""

import os

import pytest

from experiments.lab import quiet


@pytest.fixture(scope="module")
def setup_hold():
    """What a module-scoped fixture holds while it is set up (a simulation or a server would run here)."""
    return quiet._LOCK.busy_holders, os.environ.get(quiet.OWNER_ENV)


def test_module_fixture_setup_holds_the_lock(setup_hold):
    holders, owner = setup_hold
    assert holders >= 1, "a module fixture was set up outside the machine-wide busy section"
    assert owner == str(os.getpid()), "processes a fixture starts must run under the test's hold"


def test_body_holds_the_lock():
    assert quiet._LOCK.busy_holders >= 1
    assert os.environ.get(quiet.OWNER_ENV) == str(os.getpid())
