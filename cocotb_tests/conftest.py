"""Shared fixtures: reproducible seeds that every failure report prints."""

import os
import zlib

import pytest


@pytest.fixture
def seed(request):
    """``IMCGEN_SEED`` if set, else a fixed seed derived from the test's id (reproducible CI)."""
    value = int(os.environ.get("IMCGEN_SEED", zlib.crc32(request.node.nodeid.encode())))
    request.node.imcgen_seed = value
    return value


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    value = getattr(item, "imcgen_seed", None)
    if value is not None and report.failed:
        report.sections.append(
            ("seed", f"seed {value}: rerun with IMCGEN_SEED={value} pytest '{item.nodeid}'"))
    return report


def pytest_collection_modifyitems(config, items):
    if os.environ.get("IMCGEN_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow: set IMCGEN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
