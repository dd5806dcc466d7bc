"""FastAGI server: caller screening and operator feature codes."""
