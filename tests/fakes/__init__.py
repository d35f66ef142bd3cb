"""Fake external services for tests (real HTTP on 127.0.0.1). See each module's docstring."""

from tests.fakes.openai_server import FakeOpenAI, fake_openai

__all__ = ["FakeOpenAI", "fake_openai"]
