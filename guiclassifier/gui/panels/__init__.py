"""The window's panels: each owns its widgets, starts its own jobs through the host window and
shows their results. The host (gui.main_window.MainWindow) is the shell around them; see
`host.Host` for what a panel may ask of it."""
