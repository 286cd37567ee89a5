cwlVersion: v1.2
class: Workflow
doc: |
  A meta-analysis over cohorts that never leave their sites: one regression per
  cohort, each where its cohort is resident (placement by residency), then the
  inverse-variance combination of the released per-site results at home.
requirements:
  ScatterFeatureRequirement: {}
inputs:
  cohorts: File[]
  combine_script: File
steps:
  regress:
    run: regress.cwl
    scatter: cohort
    in:
      cohort: cohorts
    out: [assoc]
  combine:
    run: combine.cwl
    in:
      script: combine_script
      results: regress/assoc
    out: [meta, top_variants, manhattan]
outputs:
  site_results:
    type: File[]
    outputSource: regress/assoc
  meta:
    type: File
    outputSource: combine/meta
  top_variants:
    type: File
    outputSource: combine/top_variants
  manhattan:
    type: File
    outputSource: combine/manhattan
