"""lmi-builder's dev-cpu front end: DJL Serving's HTTP contract in front of real djl_python handlers.

Standard library only (it runs under Debian's python3 in the dev-cpu image). See docs/runtime.md.
"""
