"""The Asterisk configuration Siaga 112 owns: templates, voice prompt texts, rendering."""
