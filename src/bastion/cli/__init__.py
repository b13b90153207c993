"""The ``bastion`` command (Typer): parse, call one service method, render."""
