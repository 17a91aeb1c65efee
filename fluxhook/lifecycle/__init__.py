"""The job's lifecycle: each module here is a use case (what a view, an RQ task or the command line calls); the steps
they share are in ``steps/`` (docs/architecture.md)."""
