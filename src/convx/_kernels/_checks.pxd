# C-level declarations of the argument checks (see _checks.pyx), cimported by the kernel modules.
# Call them with positional arguments from Cython: a keyword argument turns the call into a lookup of
# the function as a Python global, which a cimport does not define.

cimport numpy as cnp


cpdef object float_array(object value, str name, object ndim=*, object dtype=*)
cpdef object int_array(object value, str name, object ndim=*)
cpdef check_shape(object arr, str name, tuple expected)
cpdef tuple positive_pair(object value, str name)
cpdef int padding_mode(object value) except -1
cpdef tuple output_length(Py_ssize_t size, Py_ssize_t kernel, Py_ssize_t stride, Py_ssize_t dilation, bint same)
cpdef tuple conv_geometry(tuple x_shape, tuple kernel_shape, object strides, object padding, object dilation,
                          str what, str channels)
cpdef object empty_output_error(object out_h, object out_w, str what, object in_h, object in_w)
cpdef bint share_memory(cnp.ndarray a, cnp.ndarray b)
cpdef check_distinct(tuple outputs, tuple out_names, tuple inputs, tuple in_names, bint same_ok=*)
cpdef object output_array(object out, str name, tuple shape, object dtype, tuple inputs=*, tuple in_names=*)
cpdef tuple output_arrays(object out, tuple names, tuple shapes, tuple dtypes, tuple inputs=*, tuple in_names=*)
