"""``train/train.py`` as the user starts it, in subprocesses: killed with SIGKILL and resumed, and
launched by ``accelerate launch`` on two CPU processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_train_config import CONFIGS, REPO, prepare_london

from portraitgan_hub import PortraitGAN
from portraitgan_hub.vgg import VGG19_WEIGHTS_ENV
from train.checkpoints import latest_checkpoint, list_checkpoints

SCRIPT = REPO / "train" / "train.py"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_london(tmp_path_factory)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != VGG19_WEIGHTS_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    env["OMP_NUM_THREADS"] = "1"  # a 32 px model gains nothing from more, and a busy machine makes them spin-wait
    return env


def _train_command(data_dir: Path, output: Path, *overrides: str) -> list[str]:
    return ["--config", str(CONFIGS / "tiny.yaml"), f"data.path={data_dir}", f"output_dir={output}", *overrides]


def test_sigkill_at_a_checkpoint_then_resume_latest(data_dir: Path, tmp_path: Path) -> None:
    overrides = ("optim.steps=6", "checkpoint_every=1", "keep_checkpoints=3", "validate_every=100")
    command = [sys.executable, str(SCRIPT), *_train_command(data_dir, tmp_path, *overrides)]
    process = subprocess.Popen(command, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    checkpoints = tmp_path / "checkpoints"
    deadline = time.monotonic() + 120
    mid_write = False
    try:
        # Kill while a checkpoint is being written if we catch one, else right after the second appears.
        while time.monotonic() < deadline and process.poll() is None:
            writing = list(checkpoints.glob(".tmp-step-*")) if checkpoints.is_dir() else []
            complete = list_checkpoints(checkpoints)
            if writing and complete:
                mid_write = True
                break
            if len(complete) >= 2:
                break
            time.sleep(0.002)
        assert process.poll() is None, "the run ended before it could be killed: " + process.stdout.read().decode()
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    survivor = latest_checkpoint(checkpoints)
    assert survivor is not None and survivor.name.startswith("step-")
    killed_at = int(survivor.name.split("-")[1])
    assert killed_at < 6

    resumed = subprocess.run(
        [sys.executable, str(SCRIPT), *_train_command(data_dir, tmp_path, *overrides), "--resume", "latest"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resumed from {survivor}" in resumed.stdout, (mid_write, resumed.stdout)
    assert [p.name for p in list_checkpoints(checkpoints)][-1] == "step-0000006"
    assert not list(checkpoints.glob(".tmp-*")) and not list(checkpoints.glob(".trash-*"))
    assert json.loads((tmp_path / "run.json").read_text())["step"] == 6
    PortraitGAN.from_pretrained(tmp_path / "model")


def test_two_cpu_processes_with_accelerate_launch(data_dir: Path, tmp_path: Path) -> None:
    launcher = [sys.executable, "-m", "accelerate.commands.launch"]
    launch = ["--config_file", str(CONFIGS / "accelerate_cpu2.yaml"), "--main_process_port", "29517"]
    overrides = ("optim.steps=4", "checkpoint_every=2", "validate_every=4", "sample_every=4")
    done = subprocess.run(
        [*launcher, *launch, str(SCRIPT), *_train_command(data_dir, tmp_path, *overrides)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "training on 2 process(es)" in done.stdout
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["world_size"] == 2 and run["distributed_type"] == "DistributedType.MULTI_CPU" and run["step"] == 4
    last = tmp_path / "checkpoints" / "step-0000004"
    names = {p.name for p in last.iterdir()}
    assert {"random_states_0.pkl", "random_states_1.pkl", "trainer_state_0.pt", "trainer_state_1.pt"} <= names
    assert json.loads((last / "trainer_state.json").read_text())["world_size"] == 2
    PortraitGAN.from_pretrained(tmp_path / "model")
