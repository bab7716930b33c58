from django.apps import AppConfig


class LayersAppConfig(AppConfig):
    name = "tests.projects.layersapp"
    label = "layersapp"
