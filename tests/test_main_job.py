"""The main job, run as a learner runs it: a real subprocess."""

import os
import shutil
import subprocess
import sys

from apps.config import MODELS_DIR_ENV, REPO_ROOT


def _run_main(env_models: str) -> subprocess.CompletedProcess:
    env = {**os.environ, MODELS_DIR_ENV: env_models}
    return subprocess.run(
        [sys.executable, "-m", "apps"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )


def test_main_job_verifies_and_lists_the_models(tmp_path):
    shutil.copytree(REPO_ROOT / "models", tmp_path / "models")
    result = _run_main(str(tmp_path / "models"))
    assert result.returncode == 0, result.stderr
    for name in ("species-classifier", "body-mass-regressor"):
        assert f"{name}" in result.stdout
    assert result.stdout.count("verified") == 2


def test_main_job_trains_missing_models(tmp_path):
    result = _run_main(str(tmp_path / "empty"))
    assert result.returncode == 0, result.stderr
    assert "training version 1" in result.stdout
    assert (tmp_path / "empty" / "species-classifier" / "1" / "manifest.json").is_file()


def test_main_job_fails_loudly_on_a_tampered_model(tmp_path):
    shutil.copytree(REPO_ROOT / "models", tmp_path / "models")
    (tmp_path / "models" / "species-classifier" / "1" / "model.onnx").write_bytes(b"not onnx")
    result = _run_main(str(tmp_path / "models"))
    assert result.returncode == 1
    assert "FAILED" in result.stdout and "sha256" in result.stdout
