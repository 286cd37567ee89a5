"""cwltool integration: CommandLineTool invocations become cluster jobs."""
