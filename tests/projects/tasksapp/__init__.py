"""A project with Django's tasks framework: a view enqueues an async task that calls an upstream
through a declared client; django-tasks-db's ``db_worker`` runs it under
``manage.py lifespan run``."""
