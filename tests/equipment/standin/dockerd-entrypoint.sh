#!/bin/sh
# Stand-in for the LMI images' entrypoint: "partition" runs the partition tool (§11.1).
if [ "$1" = "partition" ]; then
    shift
    exec python3 /opt/djl/partition/partition.py "$@"
fi
exec "$@"
