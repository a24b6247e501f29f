"""didlink: the application. Thin glue over identity/, messaging/ and transport/."""

__version__ = "0.1.0"
