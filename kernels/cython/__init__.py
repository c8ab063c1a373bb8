"""Cython flavour of the fastrec kernels (see ``kernels/__init__.py``)."""
