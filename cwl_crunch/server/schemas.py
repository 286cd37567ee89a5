"""Request bodies of the HTTP API, as pydantic models: they make the OpenAPI spec, and
anything else (unknown fields, wrong types, numbers or text the records database cannot
store) is refused with a 422 naming the field."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from cwl_crunch.model import FINAL_STATES, EndReason


def _unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be Unicode text (no lone surrogates)") from None
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return _unicode(value)


Text = Annotated[StrictStr, AfterValidator(_no_nul)]
"""A string a database text column holds: neither SQLite nor PostgreSQL stores a lone
surrogate, nor PostgreSQL a NUL (either would be a 500); no command, environment or path
can hold a NUL anyway."""
Int = Annotated[StrictInt, Field(ge=-(1 << 63), le=(1 << 63) - 1)]
"""What a 64-bit database column holds (a bigger number would fail to store: a 500)."""
Int32 = Annotated[StrictInt, Field(ge=-(1 << 31), le=(1 << 31) - 1)]
"""What a 32-bit one holds (an INTEGER column on PostgreSQL)."""
Number = Int | StrictFloat


class Strict(BaseModel):
    # NaN and the infinities are not JSON: a record holding one could not be sent back.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class CollectionMountBody(Strict):
    kind: Literal["collection"]
    pdh: Text
    path: Text = ""
    writable: StrictBool = False


class LiteralMountBody(Strict):
    kind: Literal["literal"]
    content: Annotated[StrictStr, AfterValidator(_unicode), Field(max_length=1 << 20)]
    writable: StrictBool = False
    executable: StrictBool = False


MountBody = Annotated[CollectionMountBody | LiteralMountBody, Field(discriminator="kind")]


class JobSpecBody(Strict):
    command: Annotated[list[Text], Field(min_length=1, max_length=100_000)]
    name: Text = ""
    environment: dict[Text, Text] = {}
    mounts: dict[Text, MountBody] = {}
    output_path: Text = "out"
    cwd: Text = "."
    root: Text | None = None
    stdin: Text | None = None
    stdout: Text | None = None
    stderr: Text | None = None
    image: Text | None = None
    binds: dict[Text, Text] = {}
    network: StrictBool = False
    cores: Number = 1.0
    ram: Int = 256 << 20
    gpus: Int32 = 0
    time_limit: Number | None = None
    priority: Int32 = 0
    reuse: StrictBool = True
    properties: dict[Text, Text] = {}


class WorkerBody(Strict):
    host: Text
    pid: Int32
    pid_start: Int


class OwnJobBody(Strict):
    spec: JobSpecBody
    worker: WorkerBody


class ProcessBody(Strict):
    pgid: Int32
    pgid_start: Int


def _one_of(values: Iterable[str]) -> str:
    return "^(" + "|".join(sorted(re.escape(value) for value in values)) + ")$"


FinalState = Annotated[str, Field(pattern=_one_of(FINAL_STATES))]
EndReasonText = Annotated[str, Field(pattern=_one_of(EndReason))]


class OutcomeBody(Strict):
    state: FinalState
    exit_code: Int32 | None
    output_pdh: Text | None
    log_pdh: Text | None
    failure_reason: Text | None = None
    # None (or absent, from an older worker): derived.
    end_reason: EndReasonText | None = None


class LocatorsBody(Strict):
    locators: Annotated[list[Text], Field(max_length=100_000)]


PDH_PATTERN = r"^[0-9a-f]{64}\+[0-9]{1,20}$"
Pdh = Annotated[StrictStr, Field(pattern=PDH_PATTERN)]


class RunBody(Strict):
    """A workflow run to start on a peer: the collection holding the packed workflow and
    its inputs (``model.runs.RUN_FOLDER_FILES``), and the collections the inputs name.
    Only references travel: the receiving cluster pulls the blocks it lacks."""

    run_pdh: Pdh
    input_pdhs: Annotated[list[Pdh], Field(max_length=10_000)] = []
    name: Annotated[Text, Field(max_length=1000)] = ""
    reuse: StrictBool = True
    use_container: StrictBool = True
    made_by: Annotated[dict[Pdh, Annotated[str, Field(pattern=r"^[a-z0-9]{5}-job-[a-z0-9]{15}$")]],
                       Field(max_length=10_000)] = {}
    """Inputs the peer holds (outputs of jobs there), each with the job that made it."""
    images: Annotated[dict[Annotated[StrictStr, Field(min_length=1, max_length=1000)],
                           Annotated[StrictStr, Field(pattern=r"^(sha256:[0-9a-f]{64})?$")]],
                      Field(max_length=1000)] = {}
    """Container image names the run's processes use, each with its digest on the
    sender (see model.runs.RunRequest.images)."""


class PartBody(Strict):
    """Which part of a remote job's output or log collection to pull home: the paths
    (files or directories; "" is all of it) and the job on the peer that made it."""

    job: Annotated[str, Field(pattern=r"^[a-z0-9]{5}-job-[a-z0-9]{15}$")]
    paths: Annotated[list[Annotated[Text, Field(max_length=10_000)]],
                     Field(min_length=1, max_length=10_000)]


class PeerRunBody(RunBody):
    """What a cluster sends its peer: a run, for whom, below which of its jobs. The
    receiving server takes the cluster from the token: both UUIDs must be of it."""

    parent_uuid: Annotated[StrictStr, Field(pattern=r"^[a-z0-9]{5}-job-[a-z0-9]{15}$")] | None
    owner: Annotated[StrictStr, Field(pattern=r"^[a-z0-9]{5}-tok-[a-z0-9]{15}$")]
