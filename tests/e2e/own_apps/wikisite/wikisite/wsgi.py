"""The WSGI application gunicorn serves (app.wsgi: wikisite.wsgi:application)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wikisite.settings")
application = get_wsgi_application()
