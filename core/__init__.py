"""The shared plumbing below every app: errors and how they become problem+json, metrics, logs,
health checks, middleware, Sentry, bulk COPY. It imports no app of this project (the layers
contract in pyproject.toml, checked by `make lint` and tests/test_layers.py); an app that has
something to add (a health check, a metric read from its tables) registers it from its
AppConfig.ready()."""
