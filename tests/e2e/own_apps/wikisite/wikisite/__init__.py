"""A Django project serving django-wiki, configured from its environment (app.environment)."""
