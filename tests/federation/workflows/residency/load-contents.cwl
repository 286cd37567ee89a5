cwlVersion: v1.2
class: Workflow
doc: |
  The cohort's contents read into a value on the remote runner (loadContents in a
  tool of a sub-workflow sent to the cohort's site), and returned as a string.
$namespaces: {crunch: "http://cwl-crunch.org/cwl#"}
requirements:
  SubworkflowFeatureRequirement: {}
inputs:
  cohort: File
steps:
  there:
    run:
      class: Workflow
      hints:
        crunch:RunOnCluster: {cluster_id: sitea}
      inputs:
        cohort: File
      steps:
        read:
          run:
            class: CommandLineTool
            requirements:
              DockerRequirement: {dockerPull: docker.io/library/python:3-slim}
            baseCommand: "true"
            inputs:
              cohort: {type: File, loadContents: true}
            outputs:
              text: {type: string, outputBinding: {outputEval: $(inputs.cohort.contents)}}
          in: {cohort: cohort}
          out: [text]
      outputs:
        text: {type: string, outputSource: read/text}
    in: {cohort: cohort}
    out: [text]
outputs:
  text: {type: string, outputSource: there/text}
