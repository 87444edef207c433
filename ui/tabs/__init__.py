"""One module per tab: widgets and wiring only; the work happens in `ui.handlers`."""
