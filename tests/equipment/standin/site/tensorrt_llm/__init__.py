"""Stand-in tensorrt_llm (the real one cannot be installed here, reference/lmi-runtime.md §19)."""
import os

__version__ = os.environ.get("STANDIN_TRTLLM_VERSION", "0.21.0rc1")
