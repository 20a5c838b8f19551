import os

from django.core.wsgi import get_wsgi_application

from config.startup import or_refuse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = or_refuse(get_wsgi_application)
