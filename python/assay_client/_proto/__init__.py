"""Stubs generated from ``proto/assay.proto`` by ``python/scripts/generate.sh``.

Do not edit them by hand: change the proto, run the script, commit both.
"""
