"""Jobs and their outputs as MCP resources, and the ``resource_link`` blocks that point at them.

    videogen://jobs/{job_id}                          the job as JSON (state, cost, params, outputs)
    videogen://jobs/{job_id}/outputs/{index}          an output file (up to MAX_READ_BYTES)
    videogen://jobs/{job_id}/outputs/{index}/preview  an image output downscaled to a small PNG

Every read goes through ``Toolkit.get_job`` as the calling account, so an account reads only its
own jobs (an admin any), exactly as with the job tools; ``resources/list`` lists the caller's
recent jobs. Files are read from the media store (the kept copy), never fetched anew.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from ..agent import results
from ..catalog import CATALOG, OutputKind
from ..errors import UserError
from ..jobs import Job, JobState
from ..toolkit import Account, Toolkit
from . import render

SCHEME = "videogen"
JOB_TEMPLATE = f"{SCHEME}://jobs/{{job_id}}"
OUTPUT_TEMPLATE = f"{SCHEME}://jobs/{{job_id}}/outputs/{{index}}"
PREVIEW_TEMPLATE = f"{SCHEME}://jobs/{{job_id}}/outputs/{{index}}/preview"
MAX_READ_BYTES = 700_000
"""Largest output read whole (base64 ≈ 933 KB, under hosts' 1 MiB result limit); bigger: use its URL."""
LISTED_JOBS = 50

_URI = re.compile(rf"^{SCHEME}://jobs/(?P<job>[\w-]{{1,64}})(?:/outputs/(?P<index>\d{{1,4}})(?P<preview>/preview)?)?$")


def job_uri(job_id: str) -> str:
    return f"{SCHEME}://jobs/{job_id}"


def output_uri(job_id: str, index: int) -> str:
    return f"{job_uri(job_id)}/outputs/{index}"


def templates() -> list[types.ResourceTemplate]:
    return [
        types.ResourceTemplate(name="job", title="A videogen job", uri_template=JOB_TEMPLATE,
                               mime_type="application/json",
                               description="A job's state, cost, parameters and outputs, as JSON."),
        types.ResourceTemplate(name="job_output", title="A job's output file", uri_template=OUTPUT_TEMPLATE,
                               description=f"One output file of a finished job (up to {MAX_READ_BYTES:,} bytes; "
                                           "larger ones: use the URL in the job)."),
        types.ResourceTemplate(name="job_output_preview", title="A small preview of an image output",
                               uri_template=PREVIEW_TEMPLATE, mime_type="image/png",
                               description="An image output downscaled to at most 256 pixels a side, as PNG."),
    ]


def links(job: Job) -> list[types.ContentBlock]:
    """``resource_link`` blocks for a finished job's outputs: URI, MIME type, name and size."""
    if job.state is not JobState.SUCCEEDED:
        return []
    blocks: list[types.ContentBlock] = []
    for index, output in enumerate(job.outputs):
        name = Path(output.get("path") or output.get("url") or f"output-{index}").name
        blocks.append(types.ResourceLink(
            uri=output_uri(job.id, index), name=name, title=f"{job.tool} output {index + 1}",
            mime_type=output.get("content_type"), size=output.get("size"),
            description=f"Output {index + 1} of job {job.id}; also at {output.get('url')}"))
    return blocks


class JobResources:
    """``resources/list`` and ``resources/read`` for one toolkit; every call names its account."""

    def __init__(self, toolkit: Toolkit, *, show_paths: bool) -> None:
        self.toolkit = toolkit
        self.show_paths = show_paths

    async def list(self, account: Account) -> list[types.Resource]:
        jobs = await self.toolkit.list_jobs(account, limit=LISTED_JOBS)
        return [types.Resource(uri=job_uri(j.id), name=f"job-{j.id}", title=f"{j.tool}: {j.state.value}",
                               mime_type="application/json",
                               description=results.job_line(j, tz=self.toolkit.ledger.tz).removeprefix("- "))
                for j in jobs]

    async def read(self, account: Account, uri: str) -> types.ReadResourceResult:
        match = _URI.match(uri)
        if match is None:
            raise MCPError(code=INVALID_PARAMS, message=(
                f"Unknown resource '{uri}'; resources are {JOB_TEMPLATE}, {OUTPUT_TEMPLATE} and {PREVIEW_TEMPLATE}."))
        try:
            job = await self.toolkit.get_job(account, match["job"])
        except UserError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        if match["index"] is None:
            return types.ReadResourceResult(contents=[types.TextResourceContents(
                uri=uri, mime_type="application/json", text=json.dumps(self._job_json(job), ensure_ascii=False))])
        index = int(match["index"])
        if job.state is not JobState.SUCCEEDED or index >= len(job.outputs):
            raise MCPError(code=INVALID_PARAMS, message=(
                f"Job {job.id} has no output {index} (it is {job.state.value} with {len(job.outputs)} output(s))."))
        output = job.outputs[index]
        path = output.get("path")
        if not path or not Path(path).is_file():
            raise MCPError(code=INVALID_PARAMS, message=(
                f"Output {index} of job {job.id} was not kept on this server; download it from {output.get('url')}."))
        if match["preview"]:
            return await self._preview(uri, job, path)
        size = Path(path).stat().st_size
        if size > MAX_READ_BYTES:
            raise MCPError(code=INVALID_PARAMS, message=(
                f"Output {index} of job {job.id} is {size:,} bytes, more than the {MAX_READ_BYTES:,} a resource read "
                f"returns; download it from {output.get('url')}" + (
                    f", or read {uri}/preview for a small PNG." if _is_image(job) else ".")))
        data = await asyncio.to_thread(Path(path).read_bytes)
        return types.ReadResourceResult(contents=[types.BlobResourceContents(
            uri=uri, mime_type=output.get("content_type"), blob=base64.b64encode(data).decode("ascii"))])

    async def _preview(self, uri: str, job: Job, path: str) -> types.ReadResourceResult:
        preview = await asyncio.to_thread(render.png_preview, path) if _is_image(job) else None
        if preview is None:
            raise MCPError(code=INVALID_PARAMS, message=f"No preview of this output of job {job.id}: only PNG image "
                                                        "outputs have one.")
        return types.ReadResourceResult(contents=[types.BlobResourceContents(
            uri=uri, mime_type="image/png", blob=base64.b64encode(preview).decode("ascii"))])

    def _job_json(self, job: Job) -> dict[str, Any]:
        data = results.job_structured(job, now=self.toolkit.ledger.clock(), show_paths=self.show_paths)
        data.update(params=job.params, account=job.account,
                    created_at=datetime.fromtimestamp(job.created_at, timezone.utc).isoformat(),
                    outputs_as_resources=[output_uri(job.id, i) for i in range(len(job.outputs))])
        return data

    async def job_ids(self, account: Account, prefix: str) -> list[str]:
        """The account's recent job ids starting with ``prefix`` (for argument completion)."""
        jobs = await self.toolkit.list_jobs(account, limit=LISTED_JOBS)
        return [j.id for j in jobs if j.id.startswith(prefix)]


def _is_image(job: Job) -> bool:
    spec = CATALOG.get(job.tool)
    return spec is not None and spec.output.kind is OutputKind.IMAGES
