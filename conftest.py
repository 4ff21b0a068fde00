"""Doctests run from the checkout's root, where their examples find ``sample_images/``."""

import pytest
from _pytest.doctest import DoctestItem


@pytest.fixture(autouse=True)
def _doctests_at_the_root(request, monkeypatch):
    if isinstance(request.node, DoctestItem):
        monkeypatch.chdir(request.config.rootpath)
