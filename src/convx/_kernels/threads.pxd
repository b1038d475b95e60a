cdef int effective_num_threads() noexcept nogil
