"""Features of recordings: audio and visual streams computed offline from raw media."""
