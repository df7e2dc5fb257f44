"""Tests for metaformer_mini/_names.py: named choices and their error messages."""
import pytest

from metaformer_mini._names import lookup, unknown_message

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
