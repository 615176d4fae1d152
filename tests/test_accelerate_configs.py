"""The example Accelerate configs in configs/accelerate/ are read by Accelerate's own code, on a CPU.

Each file goes through what `accelerate launch --config_file F train.py` does before it starts processes:
`load_config_from_file` (which rejects unknown keys), `launch_command`'s validation and choice of launcher (the
launchers themselves are replaced by recorders), and the environment the chosen launcher hands the processes, from
which the FSDP and DeepSpeed plugins are built as they are in each training process.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from argparse import Namespace
from pathlib import Path

import accelerate.commands.launch as launch
import pytest
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin, PrecisionType
from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env
from transformers import BertForSequenceClassification
from transformers.models.bert.modeling_bert import BertLayer

from conftest import REPO_ROOT, tiny_bert_config
from runner.config import parse_args

CONFIGS = REPO_ROOT / "configs" / "accelerate"
SBATCH = REPO_ROOT / "configs" / "slurm" / "train_multinode.sbatch"

EXPECTED = {
    "single_gpu.yaml": (DistributedType.NO, "simple_launcher", 1, 1),
    "multi_gpu.yaml": (DistributedType.MULTI_GPU, "multi_gpu_launcher", 2, 1),
    "fsdp.yaml": (DistributedType.FSDP, "multi_gpu_launcher", 2, 1),
    "deepspeed_zero2.yaml": (DistributedType.DEEPSPEED, "deepspeed_launcher", 2, 1),
    "multi_node_fsdp.yaml": (DistributedType.FSDP, "multi_gpu_launcher", 16, 2),
}
"""Per file: the distributed type, the launcher `accelerate launch` picks, processes in all, machines."""


def launched(monkeypatch, config_file: Path, *flags: str) -> tuple[str, Namespace]:
    """Run `accelerate launch --config_file F [flags] train.py --task imdb` up to the launcher: which launcher
    it picked and the arguments it passed."""
    return launched_argv(
        monkeypatch, ["--config_file", str(config_file), *flags, "train.py", "--task", "imdb"]
    )


def launched_argv(monkeypatch, argv: list[str]) -> tuple[str, Namespace]:
    """`accelerate launch ARGV` up to the launcher: which launcher it picked and the arguments it passed."""
    seen: dict[str, object] = {}
    for name in ("simple_launcher", "multi_gpu_launcher", "deepspeed_launcher"):
        monkeypatch.setattr(launch, name, lambda args, name=name: seen.update(launcher=name, args=args))
    launch.launch_command(launch.launch_command_parser().parse_args(argv))
    return seen["launcher"], seen["args"]


def test_every_config_is_covered():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_loads_with_accelerates_classes(name):
    config = load_config_from_file(str(CONFIGS / name))
    assert isinstance(config, ClusterConfig)
    distributed_type, _, num_processes, num_machines = EXPECTED[name]
    assert isinstance(config.distributed_type, DistributedType)
    assert config.distributed_type == distributed_type
    assert config.mixed_precision == "bf16" and config.mixed_precision in PrecisionType.list()
    assert config.num_processes == num_processes
    assert config.num_machines == num_machines and not config.use_cpu


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_accelerate_launch_accepts_config(monkeypatch, name):
    _, launcher, num_processes, _ = EXPECTED[name]
    chosen, args = launched(monkeypatch, CONFIGS / name)
    assert chosen == launcher
    assert args.num_processes == num_processes
    assert args.mixed_precision == "bf16"
    assert args.training_script_args == ["--task", "imdb"]


def test_command_line_num_processes_overrides_the_file(monkeypatch):
    _, args = launched(monkeypatch, CONFIGS / "multi_gpu.yaml", "--num_processes", "8")
    assert args.num_processes == 8


def test_fsdp_plugin_built_from_the_launch_environment(monkeypatch):
    _, args = launched(monkeypatch, CONFIGS / "fsdp.yaml")
    for key, value in prepare_multi_gpu_env(args).items():
        monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2
    assert plugin.reshard_after_forward is True
    assert plugin.state_dict_type.name == "FULL_STATE_DICT"
    assert plugin.cpu_ram_efficient_loading is False
    assert plugin.transformer_cls_names_to_wrap is None

    # With no layer class named, the model's own `_no_split_modules` decides what becomes an FSDP unit: for BERT,
    # every layer (and the embeddings), never the whole model or a single Linear.
    model = BertForSequenceClassification(tiny_bert_config(64, num_labels=2))
    policy = fsdp2_prepare_auto_wrap_policy(plugin, model)
    wrapped = [module for module in model.modules() if policy(module)]
    assert {type(module).__name__ for module in wrapped} == set(model._no_split_modules)
    assert sum(isinstance(module, BertLayer) for module in wrapped) == model.config.num_hidden_layers


def test_deepspeed_plugin_is_zero2_and_leaves_accumulation_to_train_py(monkeypatch):
    monkeypatch.delenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", raising=False)
    _, args = launched(monkeypatch, CONFIGS / "deepspeed_zero2.yaml")
    _, env = prepare_deepspeed_cmd_env(args)
    assert env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == "2"
    # Set, it would override train.py's --gradient_accumulation_steps inside Accelerator.
    assert "ACCELERATE_GRADIENT_ACCUMULATION_STEPS" not in env
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    plugin = DeepSpeedPlugin()
    assert plugin.zero_stage == 2
    assert plugin.deepspeed_config["zero_optimization"]["stage"] == 2
    assert plugin.deepspeed_config["zero_optimization"]["offload_optimizer"]["device"] == "none"
    assert plugin.gradient_accumulation_steps == "auto"


def test_multi_node_config_starts_its_share_of_processes_on_each_machine(monkeypatch):
    """What each machine's launcher hands torch.distributed: 8 of the 16 processes, 2 nodes, its own rank given on
    the command line, and machine 0's address and port, here given on the command line too (as under Slurm)."""
    config_file = CONFIGS / "multi_node_fsdp.yaml"
    assert (
        load_config_from_file(str(config_file)).main_process_ip,
        load_config_from_file(str(config_file)).main_process_port,
    ) == ("10.0.0.1", 29500)
    _, args = launched(monkeypatch, config_file, "--machine_rank", "1", "--main_process_ip", "127.0.0.1")
    environment = prepare_multi_gpu_env(args)
    assert (args.nnodes, args.nproc_per_node, args.node_rank) == ("2", "8", 1)
    assert (args.rdzv_backend, args.rdzv_endpoint) == ("static", "127.0.0.1:29500")
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()
    assert (plugin.fsdp_version, plugin.state_dict_type.name) == (2, "FULL_STATE_DICT")


def test_multi_node_fsdp_settings_are_those_of_the_one_machine_file():
    one, several = (
        load_config_from_file(str(CONFIGS / name)) for name in ("fsdp.yaml", "multi_node_fsdp.yaml")
    )
    assert several.fsdp_config == one.fsdp_config


def test_slurm_script_starts_its_node_as_one_machine_of_the_job(monkeypatch):
    """The launch that srun runs on each node, read by Accelerate and train.py with a job's values: node 1 of 3
    nodes with 8 GPUs each, joining the first node."""
    assert subprocess.run(["bash", "-n", str(SBATCH)]).returncode == 0
    per_node = SBATCH.read_text().split("bash -c '", 1)[1].split("'", 1)[0]
    job = {"SLURM_NNODES": "3", "NUM_PROCESSES": "24", "SLURM_NODEID": "1", "MAIN_PROCESS_IP": "node-a"}
    job |= {"MAIN_PROCESS_PORT": "29500", "DATA_DIR": "/shared/aclImdb", "OUTPUT_DIR": "/shared/runs/imdb"}
    for key, value in job.items():
        monkeypatch.setenv(key, value)
    words = shlex.split(os.path.expandvars(per_node.replace("\\\n", " ")))
    assert words[:2] == ["accelerate", "launch"]

    launcher, args = launched_argv(monkeypatch, words[2:])
    prepare_multi_gpu_env(args)
    assert launcher == "multi_gpu_launcher" and args.training_script == "train.py"
    assert (args.nnodes, args.nproc_per_node, args.node_rank) == ("3", "8", 1)
    assert args.rdzv_endpoint == "node-a:29500"
    config = parse_args(args.training_script_args)
    assert (config.output_dir, config.data_dir) == ("/shared/runs/imdb", "/shared/aclImdb")
    assert (config.resume_from_checkpoint, config.checkpointing_steps) == ("latest", "500")
