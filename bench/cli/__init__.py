"""The command line: commands and the terminal summary."""
