"""``make bench``: what lifespan_signals costs on the request path and what it saves.

``run.py`` says what is compared and drives it; ``servers.py`` starts servers and loads them with
wrk; ``report.py`` prints the table and draws the chart. The rest is a tiny Django project served
by the servers under test: ``settings.py`` / ``asgi.py`` (lifespan_signals' handler and middleware),
``settings_plain.py`` / ``asgi_plain.py`` (plain Django, the baseline), ``apps.py`` (the receivers
that open the shared clients), ``views.py`` and ``urls.py``; ``upstream.py`` is the local service
the views call.
"""
