"""Sub-commands of `python app.py`; each module exposes `register(subparsers)`."""
