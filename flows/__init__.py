"""Prefect flows and the ``skysort`` command line: thin composition of ``tasks/``."""
