cwlVersion: v1.2
class: Workflow
doc: A step whose tool carries the hint (siteb), then a plain step.
requirements:
  StepInputExpressionRequirement: {}
inputs:
  text: File
outputs:
  said: {type: File, outputSource: two/said}
steps:
  one:
    run: tag-on-siteb.cwl
    in: {text: text, tag: {valueFrom: one}}
    out: [said]
  two:
    run: tag.cwl
    in: {text: one/said, tag: {valueFrom: two}}
    out: [said]
