/* placeholder: being written */ typedef int cx_placeholder_dense;
