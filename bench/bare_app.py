"""The baseline for bench/http.py: a bare Flask view returning the hello route's text."""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    """Say hello, as PiCloud's default route does."""
    return "Hello from PiCloud!", 200, {"Content-Type": "text/plain; charset=utf-8"}
