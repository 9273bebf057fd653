"""Test doubles and contract suites shipped with Allo, usable by users' own tests."""
