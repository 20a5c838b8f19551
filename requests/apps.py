from django.apps import AppConfig


class RequestsConfig(AppConfig):
    name = "requests"
    verbose_name = "Requests"
