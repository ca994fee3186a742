"""A real SLURM cluster on the loopback interface, for the tests of ``jobs/``.

Debian's ``slurm-wlm`` (slurmctld, and one slurmd per node) runs from a private directory with
its own ``slurm.conf``, non-default ports and no munge (``auth/none``, which needs root). Its
nodes (``node1``, ``node2``, ...) are all this machine, on 127.0.0.1 with a port each, so that
multi-node jobs place their tasks on distinct node names. Clients find it through
``SLURM_CONF``. Only the daemons started here are stopped, by PID.

Its files stay in that directory, ``TmpFS`` too: srun's PMIx plugin makes
``spmix_appdir_<uid>_<job>.<step>`` there, and one left in /tmp by a killed run failed the launch
of that job id ("task launch failed") in every later cluster.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CONF = """\
ClusterName=solvertest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
AuthInfo=cred_expire=10
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool-%n
TmpFS={d}/tmp
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd-%n.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmdParameters=config_overrides
EnforcePartLimits=ALL
ReturnToService=2
SchedulerType=sched/builtin
MpiDefault=none
KillWait=10
MinJobAge=3600
SchedulerParameters=sched_interval=5
InactiveLimit=0
{nodes}
PartitionName=debug Nodes={names} Default=YES MaxTime=INFINITE State=UP
"""
NODE = "NodeName={name} NodeAddr=127.0.0.1 NodeHostname={host} Port={port} CPUs={cpus} State=UNKNOWN"

FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                "DEADLINE", "PREEMPTED"}


def unavailable_reason() -> str | None:
    """Why no local cluster can run here, or None."""
    missing = [c for c in ("slurmctld", "slurmd", "sbatch", "scontrol") if shutil.which(c) is None]
    if missing:
        return (f"SLURM is not installed ({', '.join(missing)} missing); `make test` as root installs "
                f"Debian's slurm-wlm")
    if os.geteuid() != 0:
        return "the local SLURM cluster runs its daemons with auth/none, which needs root"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    def __init__(self, directory: Path, cpus: int = 4, nodes: int = 2):
        self.dir = Path(directory)
        self.host = socket.gethostname().split(".")[0]
        self.cpus = cpus
        self.nodes = [f"node{i + 1}" for i in range(nodes)]
        self.conf = self.dir / "slurm.conf"
        self.daemons: list[subprocess.Popen] = []

    @property
    def env_overrides(self) -> dict:
        """What a client needs to talk to this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    @property
    def env(self) -> dict:
        return {**os.environ, **self.env_overrides}

    def start(self, timeout: float = 30) -> None:
        (self.dir / "state").mkdir(parents=True, exist_ok=True)
        (self.dir / "tmp").mkdir(exist_ok=True)  # PMIx's step directories: none left in /tmp by a killed run
        ports = [free_port() for _ in range(2 + len(self.nodes))]
        nodes = "\n".join(NODE.format(name=name, host=self.host, port=port, cpus=self.cpus)
                          for name, port in zip(self.nodes, ports[2:]))
        self.conf.write_text(CONF.format(ctld_port=ports[0], slurmd_port=ports[1], d=self.dir, host=self.host,
                                         nodes=nodes, names=",".join(self.nodes)))
        for cmd in (["slurmctld", "-D", "-c", "-f", str(self.conf)],
                    *(["slurmd", "-D", "-f", str(self.conf), "-N", name] for name in self.nodes)):
            log = open(self.dir / f"{cmd[0]}{'-' + cmd[-1] if cmd[0] == 'slurmd' else ''}.out", "w")
            self.daemons.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                 start_new_session=True))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.run(["sinfo", "-h", "-N", "-o", "%T"], check=False).stdout.split()
            if out == ["idle"] * len(self.nodes):
                return
            if any(d.poll() is not None for d in self.daemons):
                break
            time.sleep(0.3)
        logs = "\n".join(f"{p.name}:\n{p.read_text()[-2000:]}" for p in sorted(self.dir.glob("*.out")))
        self.stop()
        raise RuntimeError(f"the local SLURM cluster did not come up:\n{logs}")

    def stop(self) -> None:
        for d in self.daemons:
            if d.poll() is None:
                d.send_signal(signal.SIGTERM)
        for d in self.daemons:
            try:
                d.wait(timeout=15)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait()
        self.daemons = []

    def run(self, cmd: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=kwargs.pop("env", self.env), capture_output=True, text=True, check=check,
                              timeout=kwargs.pop("timeout", 60), **kwargs)

    def sbatch(self, args: list, cwd: Path, env: dict | None = None) -> int:
        proc = subprocess.run(["sbatch", "--parsable", *map(str, args)], cwd=cwd, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"sbatch failed: {proc.stderr.strip()}")
        return int(proc.stdout.strip().split(";")[0])

    def job(self, job_id: int) -> dict:
        out = self.run(["scontrol", "show", "job", "-o", str(job_id)]).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def wait(self, job_id: int, timeout: float, poll: float = 1.0) -> dict:
        """Poll until the job ends (``sbatch --wait`` notices late); its final record."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.job(job_id)
            if info.get("JobState") in FINAL_STATES:
                return info
            time.sleep(poll)
        self.run(["scancel", str(job_id)], check=False)
        raise TimeoutError(f"job {job_id} did not finish in {timeout} s: {self.job(job_id)}")
