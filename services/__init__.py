"""Services: the glue between the ML engine (`core`) and the database (`store`).

Command-line commands and UI handlers call these; `core` and `store` never import them.
"""
