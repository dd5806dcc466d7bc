"""ari_app."""
