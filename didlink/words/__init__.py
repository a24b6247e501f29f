"""How didlink speaks to a person: display-safe text, times, QR codes, shared wording."""
