"""SPIN Assistant: channels, storage, scheduler and the ``spin`` command line."""
