"""Reading the plain data inside Keras' pickled data set files, without unpickling.

CIFAR's python batches are pickled dicts, and ``imdb.npz`` / ``reuters.npz``
hold object arrays (ragged lists), which NumPy can only store as pickles.
Unpickling runs whatever the file names, so this module never calls ``pickle``:
it walks the opcode stream (``pickletools.genops`` parses it without executing
anything) on a small stack machine that builds only dict, list, tuple, str,
bytes, int, float, bool and None, plus NumPy arrays and dtypes from the three
globals NumPy writes for them, recognised by name and never imported or called.
Any other global, or an opcode that would build an object, raises
``PickleDataError``.
"""

import io
import pickletools
import zipfile

import numpy as np

# The globals NumPy's array pickles name (numpy < 2 and >= 2 spellings), as Keras' restricted unpickler allows.
_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_NDARRAY = ("numpy", "ndarray")
_DTYPE = ("numpy", "dtype")
_ALLOWED = _RECONSTRUCT | {_NDARRAY, _DTYPE}
# dtype kinds whose name alone defines them: booleans, numbers, fixed-size strings, Python objects
_SIMPLE_KINDS = set("biufcSUO")


class PickleDataError(ValueError):
    """A pickle holds something other than plain data and NumPy arrays, or is malformed."""


class _Global:
    def __init__(self, module, name):
        self.key = (module, name)


class _Args(tuple):
    """A tuple holding a global: only ever the arguments of a REDUCE, never data."""


class _Pending:
    """An array or dtype made by REDUCE, completed by BUILD (which, in a pickle, mutates it in place)."""

    def __init__(self, kind, spec):
        self.kind, self.spec, self.value = kind, spec, None


class _Reader:
    def __init__(self, source, encoding):
        self.source, self.encoding = source, encoding
        self.stack, self.marks, self.memo = [], [], {}

    def fail(self, pos, message):
        raise PickleDataError(f"{self.source}: {message} (pickle opcode at byte {pos})")

    def pop_mark(self, pos):
        if not self.marks:
            self.fail(pos, "malformed pickle: no MARK to pop to")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def pop(self, pos, count=1):
        if len(self.stack) < count + (self.marks[-1] if self.marks else 0):
            self.fail(pos, "malformed pickle: stack underflow")
        items = self.stack[-count:]
        del self.stack[-count:]
        return items

    def value(self, item, pos):
        """``item`` as data: a completed array or dtype stands for itself; globals and unfinished objects fail."""
        if isinstance(item, _Pending):
            if item.value is None:
                self.fail(pos, f"NumPy {item.kind} used before its BUILD")
            return item.value
        if isinstance(item, (_Global, _Args)):
            self.fail(pos, "a global used as data")
        return item

    def run(self, stream):
        stack, plain = self.stack, _PLAIN_VALUES
        for opcode, arg, pos in pickletools.genops(stream):
            name = opcode.name
            if name in plain:  # most opcodes of a data set: numbers and strings
                stack.append(arg)
                if name in _SMALL_INTS:
                    _scan_ints(stream, stack)
                continue
            handler = _HANDLERS.get(name)
            if handler is None:
                self.fail(pos, f"refusing pickle opcode {name}: it builds objects other than plain data")
            if name == "STOP":
                if len(stack) != 1 or self.marks:
                    self.fail(pos, "malformed pickle: STOP with a stack other than one value")
                return self.value(stack[0], pos)
            handler(self, arg, pos)
        raise PickleDataError(f"{self.source}: truncated pickle: no STOP opcode")


def _scan_ints(stream, out):
    """Read the run of BININT1/BININT2/BININT opcodes at ``stream``'s position into ``out``; stop before the rest.

    The word lists of IMDB and Reuters are millions of such opcodes, which
    genops alone parses several times slower; genops resumes where this stops.
    """
    append, from_bytes = out.append, int.from_bytes
    while True:
        start = stream.tell()
        chunk = stream.read(_SCAN_CHUNK)
        i, limit = 0, len(chunk) - 4  # below limit, the longest opcode (5 bytes) fits in the chunk
        while i < limit:
            code = chunk[i]
            if code == 0x4D:  # BININT2: unsigned little-endian 2 bytes
                append(chunk[i + 1] | chunk[i + 2] << 8)
                i += 3
            elif code == 0x4B:  # BININT1: unsigned byte
                append(chunk[i + 1])
                i += 2
            elif code == 0x4A:  # BININT: signed little-endian 4 bytes
                append(from_bytes(chunk[i + 1:i + 5], "little", signed=True))
                i += 5
            else:
                stream.seek(start + i)
                return
        stream.seek(start + i)
        if i == 0:  # the last few bytes: genops reads them
            return


def _reduce(reader, arg, pos):
    func, args = reader.pop(pos, 2)
    if not isinstance(func, _Global) or not isinstance(args, tuple):
        reader.fail(pos, "refusing REDUCE of something other than a NumPy array or dtype constructor")
    if func.key in _RECONSTRUCT:
        if len(args) != 3 or not (isinstance(args[0], _Global) and args[0].key == _NDARRAY):
            reader.fail(pos, "refusing numpy _reconstruct of something other than numpy.ndarray")
        reader.stack.append(_Pending("array", None))
    elif func.key == _DTYPE:
        name = args[0] if args else None
        name = name.decode("latin-1") if isinstance(name, bytes) else name  # Python 2 str read as bytes
        if not isinstance(name, str):
            reader.fail(pos, f"numpy.dtype needs a type name, received {args!r:.80}")
        reader.stack.append(_Pending("dtype", name))
    else:
        reader.fail(pos, f"refusing to call {'.'.join(func.key)}")


def _build(reader, arg, pos):
    state, = reader.pop(pos)
    target = reader.stack[-1] if reader.stack else None
    if not isinstance(target, _Pending) or target.value is not None or not isinstance(state, tuple):
        reader.fail(pos, "refusing BUILD of something other than a new NumPy array or dtype")
    target.value = (_make_dtype if target.kind == "dtype" else _make_array)(reader, target.spec, state, pos)


def _make_dtype(reader, name, state, pos):
    # state: (version, byte order, subarray, names, fields, itemsize, alignment, flags)
    if len(state) < 5 or state[2] is not None or state[3] is not None or state[4] is not None:
        reader.fail(pos, f"refusing NumPy dtype {name!r} with sub-arrays or fields: only simple dtypes are data")
    try:
        dtype = np.dtype(name)
    except TypeError as exc:
        reader.fail(pos, f"unknown NumPy dtype {name!r} ({exc})")
    if dtype.kind not in _SIMPLE_KINDS:
        reader.fail(pos, f"refusing NumPy dtype {name!r} of kind {dtype.kind!r}")
    order = state[1]
    order = order.decode("latin-1") if isinstance(order, bytes) else order
    if order not in ("<", ">", "|", "="):
        reader.fail(pos, f"bad byte order {order!r} in NumPy dtype {name!r}")
    return dtype.newbyteorder(order) if order in "<>" else dtype


def _make_array(reader, spec, state, pos):
    # state: (version, shape, dtype, is_fortran, raw bytes, or the list of elements of an object array)
    if len(state) != 5:
        reader.fail(pos, f"NumPy array state has {len(state)} items, expected 5")
    _, shape, dtype, fortran, raw = state
    if not isinstance(dtype, np.dtype) or not isinstance(shape, tuple) \
            or not all(isinstance(d, int) and d >= 0 for d in shape):
        reader.fail(pos, f"bad NumPy array state: shape {shape!r:.80}, dtype {dtype!r:.80}")
    order = "F" if fortran else "C"
    count = int(np.prod(shape, dtype=np.int64))
    if dtype.hasobject:
        if not isinstance(raw, list) or len(raw) != count:
            reader.fail(pos, f"object array of shape {shape} needs a list of {count} elements")
        return np.fromiter(raw, dtype=object, count=count).reshape(shape, order=order)
    raw = raw.encode("latin-1") if isinstance(raw, str) else raw  # as NumPy reads Python 2 pickles
    if not isinstance(raw, bytes) or len(raw) != count * dtype.itemsize:
        received = f"{len(raw)} bytes" if isinstance(raw, bytes) else type(raw).__name__
        reader.fail(pos, f"array of shape {shape} and dtype {dtype} needs {count * dtype.itemsize} bytes, "
                         f"the file has {received}")
    array = np.frombuffer(raw, dtype=dtype, count=count).reshape(shape, order=order)
    # NumPy's unpickling swaps a non-native byte order to the machine's; copying makes the array writable too
    return array.astype(dtype.newbyteorder("="), order="A")


def _global(reader, arg, pos):
    module, _, name = arg.partition(" ")
    _push_global(reader, module, name, pos)


def _stack_global(reader, arg, pos):
    module, name = reader.pop(pos, 2)
    if not isinstance(module, str) or not isinstance(name, str):
        reader.fail(pos, "malformed pickle: STACK_GLOBAL needs two strings")
    _push_global(reader, module, name, pos)


def _push_global(reader, module, name, pos):
    if (module, name) not in _ALLOWED:
        reader.fail(pos, f"refusing to load {module}.{name}: only plain data and NumPy arrays are read "
                         "(the file may be corrupt or malicious)")
    reader.stack.append(_Global(module, name))


def _make_tuple(reader, items, pos):
    if any(isinstance(item, _Global) for item in items):
        return _Args(items)
    return tuple(_values(reader, items, pos))


def _tuple_of(size):
    def handler(reader, arg, pos):
        reader.stack.append(_make_tuple(reader, reader.pop(pos, size) if size else [], pos))
    return handler


def _tuple(reader, arg, pos):
    reader.stack.append(_make_tuple(reader, reader.pop_mark(pos), pos))


def _list(reader, arg, pos):
    reader.stack.append(list(_values(reader, reader.pop_mark(pos), pos)))


def _append(reader, arg, pos):
    value, = reader.pop(pos)
    _container(reader, list, pos).append(reader.value(value, pos))


def _values(reader, items, pos):
    """``items`` as data (checked by type at C speed first: almost always plain already)."""
    if _SPECIAL.isdisjoint(map(type, items)):
        return items
    return [reader.value(item, pos) for item in items]


def _appends(reader, arg, pos):
    items = reader.pop_mark(pos)
    _container(reader, list, pos).extend(_values(reader, items, pos))


def _set_pairs(reader, target, items, pos):
    if len(items) % 2:
        reader.fail(pos, "malformed pickle: an odd number of dict items")
    for key, value in zip(items[::2], items[1::2]):
        key = reader.value(key, pos)
        if isinstance(key, (list, dict, np.ndarray)):
            reader.fail(pos, f"unhashable dict key of type {type(key).__name__}")
        target[key] = reader.value(value, pos)


def _dict(reader, arg, pos):
    target = {}
    _set_pairs(reader, target, reader.pop_mark(pos), pos)
    reader.stack.append(target)


def _setitems(reader, arg, pos):
    items = reader.pop_mark(pos)
    _set_pairs(reader, _container(reader, dict, pos), items, pos)


def _setitem(reader, arg, pos):
    items = reader.pop(pos, 2)
    _set_pairs(reader, _container(reader, dict, pos), items, pos)


def _container(reader, kind, pos):
    if not reader.stack or type(reader.stack[-1]) is not kind:
        reader.fail(pos, f"malformed pickle: no {kind.__name__} to add to")
    return reader.stack[-1]


def _put(reader, arg, pos):
    if not reader.stack:
        reader.fail(pos, "malformed pickle: memoizing an empty stack")
    reader.memo[len(reader.memo) if arg is None else arg] = reader.stack[-1]


def _get(reader, arg, pos):
    if arg not in reader.memo:
        reader.fail(pos, f"malformed pickle: memo key {arg} not set")
    reader.stack.append(reader.memo[arg])


def _mark(reader, arg, pos):
    reader.marks.append(len(reader.stack))


def _pop(reader, arg, pos):
    if reader.marks and reader.marks[-1] == len(reader.stack):
        reader.marks.pop()  # POP of a MARK, as pickle does
    else:
        reader.pop(pos)


def _dup(reader, arg, pos):
    if not reader.stack:
        reader.fail(pos, "malformed pickle: DUP of an empty stack")
    reader.stack.append(reader.stack[-1])


def _py2_string(reader, arg, pos):
    # Python 2 str: genops hands it over decoded as latin-1 (or ASCII for protocol 0)
    raw = arg.encode("latin-1")
    reader.stack.append(raw if reader.encoding == "bytes" else raw.decode(reader.encoding))


def _nothing(reader, arg, pos):
    pass


def _constant(value):
    def handler(reader, arg, pos):
        reader.stack.append(value)
    return handler


_PLAIN_VALUES = frozenset((
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT", "UNICODE",
    "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8"))

_SPECIAL = frozenset((_Global, _Args, _Pending))
_SMALL_INTS = frozenset(("BININT", "BININT1", "BININT2"))
_SCAN_CHUNK = 1 << 16

_HANDLERS = {
    "PROTO": _nothing, "FRAME": _nothing, "STOP": _nothing,
    "MARK": _mark, "POP": _pop, "POP_MARK": lambda reader, arg, pos: reader.pop_mark(pos), "DUP": _dup,
    "PUT": _put, "BINPUT": _put, "LONG_BINPUT": _put, "MEMOIZE": _put,
    "GET": _get, "BINGET": _get, "LONG_BINGET": _get,
    "NONE": _constant(None), "NEWTRUE": _constant(True), "NEWFALSE": _constant(False),
    "STRING": _py2_string, "BINSTRING": _py2_string, "SHORT_BINSTRING": _py2_string,
    "EMPTY_LIST": lambda reader, arg, pos: reader.stack.append([]),
    "EMPTY_DICT": lambda reader, arg, pos: reader.stack.append({}),
    "EMPTY_TUPLE": _tuple_of(0), "TUPLE1": _tuple_of(1), "TUPLE2": _tuple_of(2), "TUPLE3": _tuple_of(3),
    "TUPLE": _tuple, "LIST": _list, "DICT": _dict,
    "APPEND": _append, "APPENDS": _appends, "SETITEM": _setitem, "SETITEMS": _setitems,
    "GLOBAL": _global, "STACK_GLOBAL": _stack_global, "REDUCE": _reduce, "BUILD": _build,
}


def read_pickle(data, encoding="ASCII", source="pickle"):
    """The plain data a pickle describes, read without unpickling.

    Parameters
    ----------
    data : bytes or seekable binary file object
        The pickle stream: protocols 0-5 as Python 2 wrote them (CIFAR) and as Python 3
        writes plain data and NumPy arrays at protocols 3 and 4 (``np.save``).
    encoding : str, default "ASCII"
        How Python 2 ``str`` objects are read, as ``pickle.load``'s argument:
        ``"bytes"`` keeps them as bytes, any codec name decodes them.
    source : str
        Name used in error messages (usually the file name).

    Returns
    -------
    object
        Nested dict, list, tuple, str, bytes, int, float, bool and None, and
        ``numpy.ndarray`` (numbers, strings, or Python objects of those kinds)
        where the pickle holds NumPy arrays.

    Raises
    ------
    PickleDataError
        If the pickle names any global other than NumPy's array and dtype
        constructors, builds any other object, or is malformed or truncated.
    """
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    try:
        return _Reader(source, encoding).run(stream)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, PickleDataError):
            raise
        raise PickleDataError(f"{source}: malformed pickle ({exc})") from exc


def read_npy(stream, source="npy"):
    """One array of a ``.npy`` stream; an object array's pickle goes through ``read_pickle``.

    Parameters
    ----------
    stream : binary file object
        Positioned at the start of the ``.npy`` data (seekable).
    source : str
        Name used in error messages.

    Returns
    -------
    numpy.ndarray
    """
    version = np.lib.format.read_magic(stream)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read_header(stream)
    if not dtype.hasobject:
        stream.seek(0)
        return np.lib.format.read_array(stream, allow_pickle=False)
    array = read_pickle(stream, source=source)
    if not isinstance(array, np.ndarray) or array.shape != shape:
        raise PickleDataError(f"{source}: the pickle holds {type(array).__name__}, not the {shape} object array "
                              "the header announces")
    return array


def read_npz(path):
    """Every ``.npy`` member of an ``.npz`` archive, as Keras' ``npz_utils.load_npz`` reads them, without pickle.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict of str to numpy.ndarray
        Keyed by member name without ``.npy``.
    """
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                with archive.open(member) as raw:
                    arrays[member[:-len(".npy")]] = read_npy(io.BytesIO(raw.read()), f"{path}:{member}")
    return arrays
