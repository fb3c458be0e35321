"""Start or stop a one-node Slurm cluster on this machine (as root), for the plugin's tests.

Usage: ``python one_node_slurm.py up|down|status``

``up`` writes ``/etc/slurm/slurm.conf`` for this host (its CPUs and memory, a
small ``MaxArraySize`` so that the tests split arrays, no accounting), starts
``munged`` as the ``munge`` user, then ``slurmctld`` and ``slurmd``, and waits
until ``sinfo`` shows the node idle. ``down`` stops the three daemons. It needs
Debian's ``slurm-wlm`` and ``munge`` (``.ci/run`` installs them).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time

CONF = "/etc/slurm/slurm.conf"
MAX_ARRAY_SIZE = 64
"""Small, so that the tests' arrays of more tasks are split."""
SPOOL = ("/var/spool/slurmctld", "/var/spool/slurmd", "/var/log/slurm")


def _memory_mib() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 4096


def config(host: str) -> str:
    """The cluster's ``slurm.conf``: one node, this host, all its CPUs."""
    cpus = os.cpu_count() or 1
    memory = max(1024, int(_memory_mib() * 0.9))
    return f"""\
# Written by curator's plugins/slurm/tests/one_node_slurm.py: a one-node test cluster.
ClusterName=curator-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={SPOOL[0]}
SlurmdSpoolDir={SPOOL[1]}
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile={SPOOL[2]}/slurmctld.log
SlurmdLogFile={SPOOL[2]}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MaxArraySize={MAX_ARRAY_SIZE}
ReturnToService=2
KillWait=5
MinJobAge=60
InactiveLimit=0
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
PartitionName=short Nodes={host} MaxTime=1 State=UP
"""


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=check)


def up() -> None:
    """Write the configuration, start the daemons, wait for the node to be idle."""
    for tool in ("munged", "slurmctld", "slurmd", "sinfo"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"{tool} is not installed (apt-get install slurm-wlm munge)")
    host = socket.gethostname().split(".")[0]
    down(quiet=True)
    os.makedirs(os.path.dirname(CONF), exist_ok=True)
    with open(CONF, "w") as conf:
        conf.write(config(host))
    for folder in SPOOL:
        os.makedirs(folder, exist_ok=True)
    munge = pwd.getpwnam("munge")
    for folder in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
        os.makedirs(folder, exist_ok=True)
        os.chown(folder, munge.pw_uid, munge.pw_gid)
    if not os.path.exists("/etc/munge/munge.key"):
        _run("mungekey", "--create")
        os.chown("/etc/munge/munge.key", munge.pw_uid, munge.pw_gid)
    _run("runuser", "-u", "munge", "--", "/usr/sbin/munged")
    _run("/usr/sbin/slurmctld")
    _run("/usr/sbin/slurmd")
    deadline = time.monotonic() + 60
    state = ""
    while time.monotonic() < deadline:
        state = _run("sinfo", "-h", "-N", "-o", "%t", check=False).stdout.strip()
        if state and set(state.split()) == {"idle"}:  # the node, once per partition
            print(f"one-node Slurm up: node {host} idle")
            return
        time.sleep(0.5)
    for log in ("slurmctld.log", "slurmd.log"):
        path = os.path.join(SPOOL[2], log)
        if os.path.exists(path):
            with open(path) as file:
                print(f"--- {path}", *file.readlines()[-20:], sep="", file=sys.stderr)
    sys.exit(f"the node did not become idle within 60 s (sinfo: {state!r})")


def down(quiet: bool = False) -> None:
    """Stop slurmd, slurmctld and munged (whatever of them runs)."""
    for daemon in ("slurmd", "slurmctld", "munged"):
        _run("pkill", "-x", daemon, check=False)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(_run("pgrep", "-x", d, check=False).returncode for d in ("slurmd", "slurmctld")):
            break
        time.sleep(0.2)
    if not quiet:
        print("one-node Slurm down")


def main() -> None:
    command = sys.argv[1] if len(sys.argv) == 2 else ""
    if command == "up":
        up()
    elif command == "down":
        down()
    elif command == "status":
        print(_run("sinfo", check=False).stdout)
    else:
        sys.exit("usage: python one_node_slurm.py up|down|status")


if __name__ == "__main__":
    main()
