"""Split settings, as cookiecutter-django lays them out: ``config/settings/production.py``."""
