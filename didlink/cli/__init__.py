"""The command line: `didlink` and its commands, help, prompts."""
