"""The application service: prepare a search or resume once, then run it here or in worker processes."""
