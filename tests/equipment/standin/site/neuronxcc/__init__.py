"""Stand-in neuronxcc."""
import os

__version__ = os.environ.get("STANDIN_NEURONXCC_VERSION", "2.14.227.0")
