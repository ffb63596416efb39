import os
import stat
import zipfile

import luigi
import pytest

from pipeline.cluster.yarn import submit_conf
from pipeline.errors import ConfigError, SparkSubmitNotFound
from pipeline.flows.train import TrainModel
from pipeline.runner.submit import (
    job_conf,
    job_environment,
    private_cache_dir,
    pyspark_home,
    resolve_spark_submit,
    tasks_zip,
)
from tasks.jobspec import SPEC_FLAG, decode_spec
from tests.conftest import ODD_LABEL


def _executable(path):
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_explicit_spark_submit_must_exist(tmp_path):
    with pytest.raises(SparkSubmitNotFound, match=r"does not exist.*\[spark\] spark-submit"):
        resolve_spark_submit(str(tmp_path / "nope" / "spark-submit"))
    exe = _executable(tmp_path / "spark-submit")
    assert resolve_spark_submit(str(exe)) == str(exe)


def test_bare_name_uses_path_then_bundled_pyspark(tmp_path):
    assert resolve_spark_submit("spark-submit", which=lambda n: "/opt/spark/bin/spark-submit") == "/opt/spark/bin/spark-submit"
    home = tmp_path / "pyspark"
    (home / "bin").mkdir(parents=True)
    bundled = _executable(home / "bin" / "spark-submit")
    assert resolve_spark_submit("spark-submit", which=lambda n: None, bundled_home=home) == str(bundled)
    with pytest.raises(SparkSubmitNotFound, match="not on PATH"):
        resolve_spark_submit("my-spark-submit", which=lambda n: None, bundled_home=home)


def test_environment_sets_spark_home_only_for_pyspark_launchers(tmp_path):
    home = pyspark_home()
    env = job_environment({}, spark_submit=str(home / "bin" / "spark-submit"), bundled_home=home, local_master=True, driver_local=True,
                          python="/venv/bin/python")
    assert env["SPARK_HOME"] == str(home)
    assert env["PYSPARK_PYTHON"] == "/venv/bin/python"
    dist = job_environment({}, spark_submit="/opt/spark/bin/spark-submit", bundled_home=home, local_master=False, driver_local=False,
                           python="/venv/bin/python")
    assert "SPARK_HOME" not in dist and "PYSPARK_PYTHON" not in dist


def test_job_conf_adds_ui_port_and_yarn_settings_without_overriding_user():
    local = job_conf({"spark.x": "1"}, ui_port=4567, yarn=None, cluster_mode=False,
                     environ={"FANOUT_FAIL_LABELS": "a"})
    assert local["spark.ui.port"] == "4567" and local["spark.x"] == "1"
    assert not any(k.startswith("spark.yarn") for k in local)
    yarn = job_conf({"spark.yarn.tags": "team", "spark.yarn.maxAppAttempts": "2"}, ui_port=None,
                    yarn=submit_conf("fanout-ab", max_app_attempts=1, wait_app_completion=False),
                    cluster_mode=True, environ={"FANOUT_FAIL_LABELS": "a,b"})
    assert yarn["spark.yarn.tags"] == "team,fanout-ab"
    assert yarn["spark.yarn.maxAppAttempts"] == "2"  # the user's setting wins
    assert yarn["spark.yarn.submit.waitAppCompletion"] == "false"
    assert yarn["spark.yarn.appMasterEnv.FANOUT_FAIL_LABELS"] == "a,b"


def test_tasks_zip_holds_the_package_and_is_reused(tmp_path):
    first = tasks_zip(str(tmp_path / "cache"))
    assert tasks_zip(str(tmp_path / "cache")) == first
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    names = zipfile.ZipFile(first).namelist()
    assert "tasks/train_model.py" in names and "tasks/jobspec.py" in names
    assert not any("__pycache__" in n for n in names)


def test_train_model_command_is_an_argument_list_carrying_the_label_intact(tmp_path):
    luigi.configuration.get_config().set("spark", "master", "local[1]")
    (tmp_path / "d").write_bytes(b"the dataset's fingerprint is part of the configuration id")
    task = TrainModel(label=ODD_LABEL, data=str(tmp_path / "d"), models=str(tmp_path / "m"),
                      features=["f1", "f2"], engine="mllib-logreg", params={"max_iter": 5})
    task.state.ui_port = 45678
    argv = task.program_args()
    assert all(isinstance(a, str) for a in argv)
    assert argv[argv.index("--master") + 1] == "local[1]"
    assert argv[argv.index("--name") + 1].startswith("fanout-mllib-logreg-churn-30d-eu")
    assert "spark.ui.port=45678" in argv
    py_files = argv[argv.index("--py-files") + 1]
    assert py_files.endswith(".zip") and os.path.exists(py_files)
    assert argv[-3].endswith("train_model.py") and argv[-2] == SPEC_FLAG
    spec = decode_spec(argv[-1])
    assert spec["labels"] == [ODD_LABEL]
    assert spec["artifact_root"] == task.config_root.uri()
    assert spec["artifact_root"].startswith(f"file://{tmp_path}/m/mllib-logreg-")
    assert spec["params"] == {"max_iter": 5} and spec["features"] == ["f1", "f2"]
    assert not any(ODD_LABEL in a for a in argv), "the raw label must not appear outside the encoded spec"


def test_kerberos_principal_and_keytab_reach_spark_submit():
    # what is LOGGED (masked) is tested end to end in test_yarn_cluster_path.py
    config = luigi.configuration.get_config()
    settings = (("spark", "master", "yarn"), ("spark", "deploy_mode", "cluster"),
                ("yarn", "principal", "alice@EXAMPLE.COM"), ("yarn", "keytab", "/secure/alice.keytab"))
    for section, key, value in settings:
        if not config.has_section(section):
            config.add_section(section)
        config.set(section, key, value)
    try:
        task = TrainModel(label="a", data="hdfs://nn/d", models="hdfs://nn/m", features=["f"])
        argv = task.spark_command()
        assert argv[argv.index("--principal") + 1] == "alice@EXAMPLE.COM"
        assert argv[argv.index("--keytab") + 1] == "/secure/alice.keytab"
        assert argv.count("--keytab") == 1 and argv[0] == task.spark_submit
    finally:
        config.set("spark", "master", "local[1]")
        for section, key, _ in settings[1:]:
            config.remove_option(section, key)


def test_a_cache_folder_others_can_write_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match="not a private folder"):
        private_cache_dir(str(shared))
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="not a private folder"):
        private_cache_dir(str(link))
