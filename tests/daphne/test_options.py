"""The server commands' command-line helpers: seconds, negative values, the port probe."""

from __future__ import annotations

import socket
from argparse import ArgumentTypeError

import pytest

from lifespan_signals.daphne.options import join_negative_values, port_problem, seconds


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), ("1.5", 1.5), ("30", 30.0), ("inf", None), ("1e12", None), ("Infinity", None)],
)
def test_seconds_are_numbers_and_huge_means_no_limit(value, expected):
    assert seconds(value) == expected


@pytest.mark.parametrize("value", ["-1", "-0.001", "nan", "abc", "", "-inf"])
def test_seconds_refuse_what_is_not_a_duration(value):
    with pytest.raises(ArgumentTypeError, match=f"not {value!r}$"):
        seconds(value)


def test_negative_values_are_joined_to_their_option_only():
    options = ["--graceful-timeout"]
    assert join_negative_values(["--graceful-timeout", "-1", "-6"], options) == [
        "--graceful-timeout=-1",
        "-6",
    ]
    # A missing value stays missing, for argparse to say so.
    assert join_negative_values(["--graceful-timeout", "--noreload"], options) == [
        "--graceful-timeout",
        "--noreload",
    ]
    assert join_negative_values(["-6", "-1"], options) == ["-6", "-1"]


def test_port_in_use_is_named_in_runservers_words():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert port_problem("127.0.0.1", port) == "That port is already in use."
    assert port_problem("127.0.0.1", port) is None  # free again: the probe holds nothing


@pytest.mark.parametrize("port", [-1, 65536, 10**12])
def test_port_out_of_range(port):
    assert port_problem("127.0.0.1", port) == (
        f"Port {port} is out of range: use a port from 0 to 65535."
    )


def test_address_that_is_not_ours():
    # 192.0.2.0/24 is reserved for documentation: no interface has it.
    assert port_problem("192.0.2.1", 0) == "That IP address can't be assigned to."
