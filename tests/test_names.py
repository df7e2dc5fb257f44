"""Tests for metaformer_mini/_names.py: named choices, ranges, and their error messages."""
import argparse

import pytest

from metaformer_mini._names import check_range, flag, lookup, unknown_message

CHOICES = {"pooling": 1, "identity": 2, "attention": 3}


def test_lookup_returns_the_value_case_insensitively():
    assert lookup("token mixer", "pooling", CHOICES) == 1
    assert lookup("token mixer", "Attention", CHOICES) == 3


def test_unknown_name_suggests_the_closest_and_lists_all():
    with pytest.raises(ValueError) as err:
        lookup("token mixer", "poolng", CHOICES)
    message = str(err.value)
    assert "'poolng'" in message and "did you mean 'pooling'?" in message
    assert "attention, identity, pooling" in message


def test_far_name_gets_no_suggestion():
    assert unknown_message("norm", "zzzz", ["layer", "group"]) == "unknown norm 'zzzz'. Allowed: group, layer"


def test_non_string_is_a_type_error_naming_the_value():
    with pytest.raises(TypeError, match=r"int 3"):
        lookup("norm", 3, CHOICES)


@pytest.mark.parametrize("value, interval, message", [
    (0, "(0, inf)", "batch must be positive, got 0"),
    (-1, "[0, inf)", "batch must be 0 or more, got -1"),
    (0, "[1, inf)", "batch must be 1 or more, got 0"),
    (1.0, "[0, 1)", r"batch must be in \[0, 1\), got 1.0"),
    (float("nan"), "(0, 1]", r"batch must be in \(0, 1\], got nan"),
    (4, "[-4, 3]", r"batch must be in \[-4, 3\], got 4"),
])
def test_check_range_names_the_argument_the_value_and_the_range(value, interval, message):
    with pytest.raises(ValueError, match=message):
        check_range("batch", value, interval)
    check_range("batch", 0.5, "(0, 1]")  # inside: no error


def test_flag_is_an_argparse_type_whose_error_names_the_flag(capsys):
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=flag("[1, inf)"))
    parser.add_argument("--crop", type=flag("(0, 1]", float))
    assert parser.parse_args(["--batch", "8", "--crop", "0.9"]) == argparse.Namespace(batch=8, crop=0.9)
    for argv, message in [(["--batch", "0"], "argument --batch: must be 1 or more, got 0"),
                          (["--batch", "1.5"], "argument --batch: invalid int value: '1.5'"),
                          (["--crop", "1.5"], r"argument --crop: must be in (0, 1], got 1.5")]:
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        assert message in capsys.readouterr().err
