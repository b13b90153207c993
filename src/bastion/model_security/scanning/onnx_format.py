"""ONNX: parse the protobuf (never run it) and check ops and external data.

Refused: nodes in op domains outside the standard ONNX / ONNX-ML / ONNX Runtime
ones (custom ops load native code), external-data ``location`` values that
are absolute, leave the model folder (``..``, symlinks) or declare sizes past
the limits or past the referenced file.  External data is looked for on every
tensor: initializers (dense and sparse), Constant attributes, tensors in
subgraphs of If / Loop / Scan nodes and in local functions.  A referenced file
is *not* trusted for being referenced: the folder scan reads it by content.

Example::

    scan_onnx(path, Where("model.onnx"), ctx, model_dir=path.parent)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

from bastion.model_security.scanning.interface import ScanContext, Where

STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training",
                              "ai.onnx.preview.training", "com.microsoft",
                              "com.microsoft.nchwc", "com.ms.internal.nhwc"})


def _graphs(graph: object) -> Iterator[object]:
    import onnx

    assert isinstance(graph, onnx.GraphProto)
    yield graph
    for node in graph.node:
        yield from _subgraphs(node)


def _subgraphs(node: object) -> Iterator[object]:
    """Graphs held by a node's attributes (If branches, Loop / Scan bodies), recursively."""
    import onnx

    assert isinstance(node, onnx.NodeProto)
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield from _graphs(attr.g)
        elif attr.type == onnx.AttributeProto.GRAPHS:
            for g in attr.graphs:
                yield from _graphs(g)


def _node_tensors(nodes: Iterable[object]) -> Iterator[object]:
    """Tensors in node attributes: Constant values (dense or sparse), tensor lists."""
    import onnx

    for node in nodes:
        assert isinstance(node, onnx.NodeProto)
        for a in node.attribute:
            sparse = list(a.sparse_tensors)
            if a.HasField("sparse_tensor"):
                sparse.append(a.sparse_tensor)
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            for sp in sparse:
                yield sp.values
                yield sp.indices


def _all_tensors(model: object) -> Iterator[object]:
    """Every TensorProto of the model, wherever it sits (external data can be on any)."""
    import onnx

    assert isinstance(model, onnx.ModelProto)
    graphs = list(_graphs(model.graph))
    for f in model.functions:
        for node in f.node:
            graphs.extend(_subgraphs(node))
        yield from _node_tensors(f.node)
    for graph in graphs:
        assert isinstance(graph, onnx.GraphProto)
        yield from graph.initializer
        for sp in graph.sparse_initializer:
            yield sp.values
            yield sp.indices
        yield from _node_tensors(graph.node)


def scan_onnx(path: Path, where: Where, ctx: ScanContext, *, model_dir: Path | None) -> None:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError, RuntimeError) as e:
        ctx.error("malformed_onnx", f"ONNX protobuf cannot be parsed: {e}",
                  file=where.file, member=where.member)
        return
    local_functions = {(f.domain, f.name) for f in model.functions}
    nodes = [n for f in model.functions for n in f.node]
    for graph in _graphs(model.graph):
        assert isinstance(graph, onnx.GraphProto)
        nodes.extend(graph.node)
    for node in nodes:
        if node.domain not in STANDARD_DOMAINS and (node.domain, node.op_type) \
                not in local_functions:
            ctx.add("onnx_custom_op",
                    f"node {node.name or node.op_type!r} uses custom op domain "
                    f"{node.domain!r} (custom ops load native code)",
                    file=where.file, member=where.member)
    for tensor in _all_tensors(model):
        assert isinstance(tensor, onnx.TensorProto)
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
            info = {e.key: e.value for e in tensor.external_data}
            _check_external(tensor.name, info, where, ctx, model_dir)


def _check_external(name: str, info: dict[str, str], where: Where, ctx: ScanContext,
                    model_dir: Path | None) -> None:
    def bad(msg: str) -> None:
        ctx.add("onnx_external_data", f"tensor {name!r}: {msg}",
                file=where.file, member=where.member)

    location = info.get("location", "")
    posix, win = PurePosixPath(location), PureWindowsPath(location)
    if not location or posix.is_absolute() or win.is_absolute() or win.drive \
            or ".." in posix.parts or ".." in win.parts:
        bad(f"external data location {location!r} is absolute or leaves the model folder")
        return
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        bad("external data offset/length are not integers")
        return
    if offset < 0 or (length is not None and (length < 0 or length >
                                              ctx.limits.max_external_data_bytes)):
        bad(f"declared external data size (offset {offset}, length {length}) is out of range")
        return
    if model_dir is None:
        return
    target = model_dir / location
    root = model_dir.resolve()
    if any(p.is_symlink() for p in [target, *target.parents] if p != model_dir and
           str(p).startswith(str(model_dir))):
        bad(f"external data location {location!r} goes through a symlink")
        return
    if not target.resolve().is_relative_to(root):
        bad(f"external data location {location!r} resolves outside the model folder")
        return
    if not target.is_file():
        ctx.error("onnx_external_data_missing", f"tensor {name!r}: {location!r} not found",
                  file=where.file, member=where.member)
        return
    # the target is scanned by its own content like every file of the folder; being
    # named here only lets bytes of *no* known format count as raw tensor data
    ctx.tensor_data_paths.add(target.resolve())
    size = target.stat().st_size
    if offset + (length or 0) > size:
        bad(f"declares {offset}+{length} bytes but {location!r} has {size}")
