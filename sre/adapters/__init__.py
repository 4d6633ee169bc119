"""Thin typed wrappers over outside systems; they import no domain folder."""
