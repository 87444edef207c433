"""The ML engine of Guidance Studio: torch and numpy only (no gradio, sqlalchemy, store or ui)."""
