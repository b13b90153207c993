"""Export the lineage graph as OpenLineage run events (openlineage-python).

Each node that was produced from other nodes becomes one COMPLETE run event:
the job is named after the relation (``bastion.parsed``, ``bastion.trained``…),
inputs are the upstream nodes, the output is the node, and every dataset
carries a ``datasetVersion`` facet with its content digest.  Events go to a
JSON Lines file or an OpenLineage HTTP endpoint (e.g. Marquez).

Example::

    count = export_events(graph.edges(), file=Path("lineage.jsonl"))
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from openlineage.client.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import DatasetFacet, dataset_version_dataset
from openlineage.client.transport import Transport
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport

from bastion import __version__
from bastion.core.errors import InputError, StorageError
from bastion.core.lineage.graph import Edge, Node

PRODUCER = f"https://github.com/bastion-ml/bastion/tree/v{__version__}"
_NS = uuid.UUID("6f1c7a52-77e0-4e0b-9a57-4c1f7b0b3c11")


def _dataset(
    node: Node, cls: type[InputDataset] | type[OutputDataset]
) -> InputDataset | OutputDataset:
    facets: dict[str, DatasetFacet] = {}
    if node.digest:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=f"sha256:{node.digest}", producer=PRODUCER
        )
    return cls(namespace=f"bastion://{node.project}/{node.kind}", name=node.id, facets=facets)


def build_events(edges: Iterable[Edge]) -> list[RunEvent]:
    by_dst: dict[tuple[str, str], list[Edge]] = defaultdict(list)
    for e in edges:
        by_dst[e.dst.key].append(e)
    events = []
    for key, ins in by_dst.items():
        dst = ins[0].dst
        events.append(
            RunEvent(
                eventType=RunState.COMPLETE,
                eventTime=dt.datetime.fromisoformat(ins[-1].created_at).isoformat(),
                run=Run(runId=str(uuid.uuid5(_NS, "|".join(key)))),
                job=Job(namespace=f"bastion://{dst.project}", name=f"bastion.{ins[0].relation}"),
                inputs=[_dataset(e.src, InputDataset) for e in ins],  # type: ignore[misc]
                outputs=[_dataset(dst, OutputDataset)],  # type: ignore[list-item]
                producer=PRODUCER,
            )
        )
    return events


def export_events(
    edges: Iterable[Edge], *, file: Path | None = None, url: str | None = None
) -> int:
    """Emit one event per produced node; returns how many were sent."""
    if (file is None) == (url is None):
        raise InputError("give exactly one of --file or --url")
    transport: Transport
    if file is not None:
        transport = FileTransport(FileConfig(log_file_path=str(file), append=True))
    else:
        assert url is not None
        if not url.startswith(("http://", "https://")):
            raise InputError(f"{url!r} is not an http(s) URL")
        transport = HttpTransport(HttpConfig(url=url, timeout=5.0, retry={"total": 0}))
    client = OpenLineageClient(transport=transport)
    events = build_events(edges)
    try:
        for event in events:
            client.emit(event)
    except OSError as e:
        raise StorageError(f"could not emit OpenLineage events: {e}") from e
    return len(events)


__all__ = ["build_events", "export_events"]
