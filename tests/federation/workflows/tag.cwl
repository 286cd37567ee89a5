cwlVersion: v1.2
class: CommandLineTool
doc: Its input's text, then its tag (so a chain of them says where it went).
baseCommand: [sh, -c, 'cat "$0" && echo "$1"']
inputs:
  text: {type: File, inputBinding: {position: 1}}
  tag: {type: string, inputBinding: {position: 2}}
stdout: said.txt
outputs:
  said: stdout
