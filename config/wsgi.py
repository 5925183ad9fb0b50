"""WSGI entry point, used by gunicorn: Django, with the common POST /v1/rank answered beside it
(ranking/direct.py; API_DIRECT_PATH)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_wsgi_application()

from ranking.direct import DirectRank  # noqa: E402  (Django is set up by the line above)

application = DirectRank(django_application)
