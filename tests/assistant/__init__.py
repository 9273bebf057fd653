"""Tests of the customer assistant."""
