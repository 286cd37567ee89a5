"""The ``cwl-crunch`` command: one small module per subcommand."""
