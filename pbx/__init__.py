"""The Asterisk we run: its root folder (built once), its prompts, its process."""
