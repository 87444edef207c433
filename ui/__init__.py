"""The Gradio browser app: `layout` wires widgets, `handlers` holds plain functions."""
