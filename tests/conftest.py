"""Fixtures shared by the test modules (add yours below; keep each one documented)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_azure_openai import FakeAzureOpenAI


@pytest.fixture
def fake_azure_openai() -> Iterator[FakeAzureOpenAI]:
    """A started local fake of Azure OpenAI (see ``tests/fake_azure_openai.py``).

    Its ``endpoint``, ``api_key`` and ``deployment`` are what ``AZURE_OPENAI_ENDPOINT``,
    ``AZURE_OPENAI_API_KEY`` and ``AZURE_OPENAI_DEPLOYMENT`` should say; ``base_url`` serves
    the plain OpenAI protocol. Script replies with ``fake.script(Reply...)``; read what it
    received in ``fake.requests``.
    """
    with FakeAzureOpenAI() as fake:
        yield fake
