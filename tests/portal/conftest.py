# The engine's scripted vendor and its standard property, for portal tests that drive the engine.
from tests.locks.conftest import cloud, place  # noqa: F401 - fixtures
