"""The allow-list of pickle globals needed to rebuild supported model objects.

Deciding by allow-list, not deny-list: every ``module.name`` that a pickle
imports must be listed here (exactly, or as a class of a trusted framework
module), otherwise the artifact is refused.  Deny-lists of "dangerous"
functions are known to be bypassed (``pkgutil.resolve_name``,
``operator.attrgetter``, ``timeit.timeit`` … each one advisory).

Example::

    >>> is_allowed("sklearn.pipeline", "Pipeline")
    True
    >>> is_allowed("posix", "system")
    False
"""

from __future__ import annotations

import re


def _names(text: str) -> list[str]:
    return text.split()


_NUMPY_SCALARS = _names(
    "bool_ int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64 longdouble "
    "complex64 complex128 clongdouble str_ bytes_ void datetime64 timedelta64 intc uintc int_ "
    "uint longlong ulonglong half single double ndarray dtype matrix "
)

EXACT: frozenset[str] = frozenset(
    {
        # builtins / stdlib value types
        *(f"builtins.{n}" for n in _names(
            "set frozenset slice complex bytearray bytes object int float str bool list dict "
            "tuple range "
        )),
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "_codecs.encode",
        "collections.OrderedDict",
        "collections.defaultdict",
        "collections.deque",
        "collections.Counter",
        "datetime.datetime",
        "datetime.date",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        "decimal.Decimal",
        # numpy
        *(f"numpy.{n}" for n in _NUMPY_SCALARS),
        *(f"{m}.{n}" for m in ("numpy.core.multiarray", "numpy._core.multiarray")
          for n in ("_reconstruct", "scalar")),
        "numpy.core.numeric._frombuffer",
        "numpy._core.numeric._frombuffer",
        "numpy.ma.core._mareconstruct",
        "numpy.ma.core.MaskedArray",
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
        # joblib array wrapper (arrays follow in the stream)
        "joblib.numpy_pickle.NumpyArrayWrapper",
        # xgboost / lightgbm boosters
        "xgboost.core.Booster",
        "lightgbm.basic.Booster",
        # torch tensor and storage rebuilding
        *(f"torch._utils.{n}" for n in _names(
            "_rebuild_tensor _rebuild_tensor_v2 _rebuild_tensor_v3 _rebuild_parameter "
            "_rebuild_parameter_with_state _rebuild_sparse_tensor _rebuild_qtensor "
            "_rebuild_meta_tensor_no_storage _rebuild_wrapper_subclass _rebuild_nested_tensor "
            "_rebuild_device_tensor_from_numpy "
        )),
        "torch._tensor._rebuild_from_type_v2",
        "torch.serialization._get_layout",
        "torch.Size",
        "torch.device",
        "torch.Tensor",
        "torch.storage.UntypedStorage",
        "torch.storage.TypedStorage",
        "torch.nn.parameter.Parameter",
        "torch.nn.parameter.Buffer",
        *(f"torch.{n}" for n in _names(
            "float32 float float64 double float16 half bfloat16 complex64 complex128 uint8 int8 "
            "int16 short int32 int int64 long bool qint8 quint8 qint32 float8_e4m3fn float8_e5m2 "
            "uint16 uint32 uint64 strided sparse_coo sparse_csr _mkldnn contiguous_format "
            "channels_last channels_last_3d preserve_format "
        )),
    }
)

# Modules whose *classes* (CamelCase names, optionally with leading underscores)
# rebuild model objects.  Functions of these modules are not allowed.
CLASS_MODULE_PREFIXES: tuple[str, ...] = (
    "sklearn.",
    "scipy.sparse.",
    "numpy.random.",
    "numpy.dtypes",
    "xgboost.sklearn",
    "lightgbm.sklearn",
    "torch.nn.modules.",
    "torch.optim.",
    "torch",  # exact module only: torch.FloatStorage, torch.LongStorage, ...
)

# Sub-modules of trusted frameworks that are never needed to load a model.
DENIED_MODULE_PREFIXES: tuple[str, ...] = (
    "sklearn.utils._testing",
    "sklearn.externals",
    "sklearn.datasets",
    "sklearn.utils._show_versions",
    "torch.hub",
    "torch.jit",
)


_SPARSE = re.compile(r"^(csr|csc|coo|bsr|dia|dok|lil)_(matrix|array)$")


def _module_matches(module: str, prefix: str) -> bool:
    if prefix.endswith("."):
        return module.startswith(prefix) or module == prefix[:-1]
    return module == prefix


def _is_class_name(name: str) -> bool:
    core = name.lstrip("_")
    return bool(core) and name.isidentifier() and core[0].isupper()


def is_allowed(module: str, name: str) -> bool:
    """True when ``module.name`` may be imported by a model pickle."""
    qualified = f"{module}.{name}"
    if any(module == p or module.startswith(p + ".") for p in DENIED_MODULE_PREFIXES):
        return False
    if qualified in EXACT:
        return True
    if (module == "scipy.sparse" or module.startswith("scipy.sparse.")) and \
            _SPARSE.match(name):
        return True
    if "." in name or not _is_class_name(name):
        return False
    if module == "torch":
        # FloatStorage, ... and the legacy tensor types (FloatTensor, ...) of old checkpoints
        return name.endswith(("Storage", "Tensor"))
    return any(_module_matches(module, p) for p in CLASS_MODULE_PREFIXES if p != "torch")
