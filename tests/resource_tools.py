"""A CWL tool that prints the cores it was given, for the tests of how a step's
ResourceRequirement is judged against the cluster's nodes (embedded and SLURM).
Format ``CORES_TOOL`` with ``where`` (requirements or hints) and ``cores`` (coresMin)."""

CORES_TOOL = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
arguments: [$(runtime.cores)]
stdout: cores.txt
{where}:
  ResourceRequirement: {{coresMin: {cores}}}
inputs: []
outputs:
  cores: {{type: File, outputBinding: {{glob: cores.txt}}}}
"""
