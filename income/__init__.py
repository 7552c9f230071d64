"""Library code shared by the tasks, the services and the tests (no Flyte in here)."""
