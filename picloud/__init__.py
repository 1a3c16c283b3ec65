"""PiCloud: a self-hosted serverless platform for Lua scripts.

The package itself imports nothing: ``picloud.web.create_app`` builds the web app, so
the ``picloud`` command (``picloud.cli``) and the executor processes load only what
they use.
"""
