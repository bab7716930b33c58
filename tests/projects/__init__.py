"""The Django projects the tests run, in process and as real servers (see ``tests/settings.py``)."""
