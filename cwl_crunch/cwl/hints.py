"""cwl-crunch's CWL extensions, and Arvados' that mean the same.

Namespace ``http://cwl-crunch.org/cwl#`` (declare it as ``$namespaces: {crunch:
"http://cwl-crunch.org/cwl#"}``):

- ``crunch:RunOnCluster`` with ``cluster_id`` (a cluster id or an expression): run this
  process (a tool, a workflow, or a step's process) on that cluster. Arvados'
  ``arv:ClusterTarget`` (``http://arvados.org/cwl#``, field ``cluster_id``) is read as
  the same thing, so Arvados' federated workflows run unchanged.
- ``crunch:RunInSingleContainer`` (and Arvados' ``arv:RunInSingleContainer``) on a
  subworkflow: run it as one job (``cwl/single_job.py``), here or, with RunOnCluster, on
  the peer.

The schema below is a schema-salad extension of CWL, so ``--validate`` checks the
hints' fields; plain cwltool ignores them (an unknown hint is only logged).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cwltool.process import Process, use_custom_schema

CRUNCH_NAMESPACE = "http://cwl-crunch.org/cwl#"
ARVADOS_NAMESPACE = "http://arvados.org/cwl#"
RUN_ON_CLUSTER = CRUNCH_NAMESPACE + "RunOnCluster"
CLUSTER_TARGET = ARVADOS_NAMESPACE + "ClusterTarget"
CLUSTER_HINTS = (RUN_ON_CLUSTER, CLUSTER_TARGET)
SINGLE_JOB_HINTS = (CRUNCH_NAMESPACE + "RunInSingleContainer",
                    ARVADOS_NAMESPACE + "RunInSingleContainer")

SCHEMA = """
$base: "http://cwl-crunch.org/cwl#"
$namespaces:
  cwl: "https://w3id.org/cwl/cwl#"
  crunch: "http://cwl-crunch.org/cwl#"
  arv: "http://arvados.org/cwl#"
$graph:
- $import: https://w3id.org/cwl/CommonWorkflowLanguage.yml
- name: RunOnCluster
  type: record
  inVocab: false
  extends: cwl:ProcessRequirement
  doc: Run this process on the cluster that cluster_id names.
  fields:
    class:
      type: string
      jsonldPredicate: {_id: "@type", _type: "@vocab"}
    cluster_id:
      type: [string, cwl:Expression]
      doc: A cluster id (5 lowercase letters or digits), or an expression giving one.
      jsonldPredicate: "crunch:cluster_id"
- name: RunInSingleContainer
  type: record
  inVocab: false
  extends: cwl:ProcessRequirement
  doc: Run this subworkflow as one job instead of one job per step.
  fields:
    class:
      type: string
      jsonldPredicate: {_id: "@type", _type: "@vocab"}
- name: arv:RunInSingleContainer
  type: record
  inVocab: false
  extends: cwl:ProcessRequirement
  doc: Arvados' name for RunInSingleContainer.
  fields:
    class:
      type: string
      jsonldPredicate: {_id: "@type", _type: "@vocab"}
- name: arv:ClusterTarget
  type: record
  inVocab: false
  extends: cwl:ProcessRequirement
  doc: Arvados' name for RunOnCluster.
  fields:
    class:
      type: string
      jsonldPredicate: {_id: "@type", _type: "@vocab"}
    cluster_id:
      type: [string?, cwl:Expression?]
      jsonldPredicate: "crunch:cluster_id"
    project_uuid:
      type: [string?, cwl:Expression?]
"""
SCHEMA_NAME = "http://cwl-crunch.org/cwl"
VERSIONS = ("v1.0", "v1.1", "v1.2")


def use_extensions() -> None:
    """cwltool's ``custom_schema_callback``: load documents with our extensions."""
    for version in VERSIONS:
        use_custom_schema(version, SCHEMA_NAME, SCHEMA)


def in_force(process: Process, classes: tuple[str, ...]) -> Mapping[str, Any] | None:
    """The requirement or hint of one of ``classes`` in force for ``process``: its own
    over its step's over its workflow's (cwltool lists inherited ones first),
    requirements over hints."""
    for found in (process.requirements, process.hints):
        for item in reversed(found):
            if item.get("class") in classes:
                return item
    return None


def cluster_hint(process: Process) -> Mapping[str, Any] | None:
    """The RunOnCluster (or ClusterTarget) in force for ``process``."""
    hint = in_force(process, CLUSTER_HINTS)
    return hint if hint is not None and hint.get("cluster_id") is not None else None


def literal_cluster_ids(document: Any) -> Iterator[str]:
    """Every cluster id written out (not an expression) in the hints and requirements
    of a loaded document and the processes inside it."""
    if isinstance(document, Mapping):
        if document.get("class") in CLUSTER_HINTS:
            value = document.get("cluster_id")
            if isinstance(value, str) and "$(" not in value and "${" not in value:
                yield value
        for item in document.values():
            yield from literal_cluster_ids(item)
    elif isinstance(document, list):
        for item in document:
            yield from literal_cluster_ids(item)
