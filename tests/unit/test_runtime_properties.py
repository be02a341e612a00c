"""The dev-cpu front end's serving.properties parsing (java.util.Properties rules) and env merge."""

from __future__ import annotations

import sys

import pytest

from builder.paths import REPO_DIR

sys.path.insert(0, str(REPO_DIR / "images" / "dev-cpu" / "frontend"))
from lmi_dev_frontend.properties import (
    PropertiesError,
    engine_options,
    env_model_properties,
    global_config,
    merge_model_properties,
    parse_properties,
)


@pytest.mark.parametrize("text, expected", [
    ("a=1", {"a": "1"}),
    ("a = 1  ", {"a": "1  "}),          # trailing whitespace is kept, leading is not
    ("a:1", {"a": "1"}),
    ("a 1", {"a": "1"}),                 # whitespace separates too
    ("a  =  b=c", {"a": "b=c"}),         # only the first separator counts
    ("a", {"a": ""}),
    ("# c\n! c\n\n  a=1", {"a": "1"}),
    ("a=1\na=2", {"a": "2"}),            # last duplicate wins
    ("a=x\\\n   y", {"a": "xy"}),        # continuation drops leading whitespace
    ("a=x\\\\\nb=y", {"a": "x\\", "b": "y"}),  # even backslashes do not continue
    ("# c \\\na=1", {"a": "1"}),         # a comment line is never continued
    ("a=x\\\n# not a comment", {"a": "x# not a comment"}),
    ("k\\=x=1", {"k=x": "1"}),           # escaped separator stays in the key
    ("k\\ x=1", {"k x": "1"}),
    ("a=\\u00e9\\t\\n", {"a": "é\t\n"}),
    ("a=\\q", {"a": "q"}),               # unknown escapes drop the backslash
    ("a=1\r\nb=2\rc=3", {"a": "1", "b": "2", "c": "3"}),
    ("option.entryPoint=model.py", {"option.entryPoint": "model.py"}),
    ("a=x\\", {"a": "x"}),               # a backslash at end of file is dropped
])
def test_java_properties_rules(text, expected):
    assert parse_properties(text) == expected


def test_malformed_unicode_escape_is_an_error():
    with pytest.raises(PropertiesError):
        parse_properties("a=\\u12")


def test_option_env_case_rule_and_renames():
    env = {"OPTION_MAX_ROLLING_BATCH_SIZE": "64", "OPTION_entryPoint": "x.py", "OPTION_Mixed_Case": "1",
           "OPTION_ENGINE": "MPI", "OPTION_EMPTY": "", "OPTION_TENSOR_PARALLEL_DEGREE": "4", "PATH": "/bin"}
    assert env_model_properties(env) == {
        "option.max_rolling_batch_size": "64", "option.entryPoint": "x.py", "option.Mixed_Case": "1",
        "engine": "MPI", "option.tensor_parallel_degree": "4"}
    assert env_model_properties({"OPTION_ENTRYPOINT": "m.py"}) == {"option.entryPoint": "m.py"}


def test_file_wins_over_option_env_and_sagemaker_wins_over_file():
    merged = merge_model_properties(
        {"option.dtype": "fp32", "option.model_loading_timeout": "600"},
        {"OPTION_DTYPE": "fp16", "OPTION_TRUST_REMOTE_CODE": "true", "SAGEMAKER_STARTUP_TIMEOUT": "900"})
    assert merged["option.dtype"] == "fp32"
    assert merged["option.trust_remote_code"] == "true"
    assert merged["option.model_loading_timeout"] == "900"


def test_serving_env_wins_over_config_file_and_is_lower_cased():
    conf = global_config({"inference_address": "http://127.0.0.1:8080", "job_queue_size": "10"},
                         {"SERVING_INFERENCE_ADDRESS": "http://127.0.0.1:9999", "SERVING_MAX_REQUEST_SIZE": "",
                          "SAGEMAKER_MAX_PAYLOAD_IN_MB": "2"})
    assert conf == {"inference_address": "http://127.0.0.1:9999", "job_queue_size": "10",
                    "max_request_size": str(2 * 1024 * 1024)}


def test_engine_options_strip_prefix():
    assert engine_options({"engine": "Python", "option.rolling_batch": "disable", "job_queue_size": "5"}) == {
        "rolling_batch": "disable"}
