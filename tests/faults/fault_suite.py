#!/usr/bin/env python3
"""weft's fault-injection suite: random trials, each a job of ranks as
processes running a random sequence of verified collectives (fault_rank),
one rank of which is killed or stopped at a random moment, or at one of
weft's init phases (WEFT_FAULT_INJECT). Each trial checks that

  * every survivor returns an error (exit 3) within WEFT_TIMEOUT + margin of
    the fault, and nothing hangs (a survivor still running well after that is
    killed and counted as a hang);
  * no survivor crashes (a signal or an unexpected exit status);
  * no call ever returns success with a wrong result (exit 4);
  * the error names the dead or silent rank ("rank V");
  * nothing is left in /dev/shm.

  fault_suite.py --rank-binary PATH [--trials N] [--seed S] [--timeout T]
                 [--modes shm,nodes,netns] [--netns NAME] [--report FILE]

Modes: shm (one node, every rank through shared memory), nodes (two nodes
on loopback, WEFT_HOSTID: shared memory inside, sockets between), netns
(one rank per network namespace NAME-i made by scripts/netns.sh, sockets
over veth pairs). Exits 0 when every trial passed, 1 otherwise.
"""

import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

INIT_POINTS = ["init.bootstrap", "init.hosts", "shm.named", "shm.created", "shm.mapped", "init.shm", "init.net",
               "init.done"]


def shm_entries():
    try:
        return set(os.listdir("/dev/shm"))
    except OSError:
        return set()


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


class Trial:
    def __init__(self, index, rng, args):
        self.index = index
        self.mode = rng.choice(args.modes)
        self.nranks = rng.choice([2, 3, 4]) if self.mode != "nodes" else rng.choice([3, 4])
        if self.mode == "netns":
            self.nranks = min(self.nranks, args.netns_nodes)
        self.victim = rng.randrange(self.nranks)
        self.how = rng.choice(["kill", "kill", "stop"])  # stops cost a whole timeout each
        applicable = [p for p in INIT_POINTS if p != "init.net" or self.mode != "shm"]
        self.point = rng.choice(applicable) if rng.random() < args.init_fraction else None
        self.delay = rng.uniform(0.05, 1.5)
        self.seed = rng.randrange(1 << 62)
        self.calls = args.calls

    def describe(self):
        where = self.point if self.point else f"{self.delay:.2f}s"
        return (f"trial {self.index}: {self.mode} {self.nranks} ranks, rank {self.victim} {self.how} at {where}, "
                f"seed {self.seed}")


def free_port():
    """A port nothing listens on now, below the ephemeral range (so that no
    outgoing connection of an earlier trial holds it)."""
    for _ in range(100):
        port = random.randrange(10000, 30000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port found")


def rank_env(trial, rank, port, args):
    env = dict(os.environ)
    env.update(WEFT_RANK=str(rank), WEFT_NRANKS=str(trial.nranks), WEFT_TIMEOUT=str(args.timeout))
    env.pop("WEFT_FAULT_INJECT", None)
    if trial.mode == "netns":
        env.update(WEFT_SOCKET_IFNAME="eth0", WEFT_COMM_ID=f"10.231.0.1:{port}", WEFT_HOSTID=f"{args.netns}-{rank}")
    else:
        env.update(WEFT_SOCKET_IFNAME="lo", WEFT_COMM_ID=f"127.0.0.1:{port}")
        if trial.mode == "nodes":
            env["WEFT_HOSTID"] = f"weft-fault-node-{rank % 2}"
        else:
            env.pop("WEFT_HOSTID", None)
    if trial.point:
        env["WEFT_FAULT_INJECT"] = f"{trial.point}@{trial.victim}" + (":stop" if trial.how == "stop" else "")
    return env


def run_trial(trial, args, logdir):
    """Runs one trial; returns a dict of what happened."""
    port = free_port()
    shm_before = shm_entries()
    procs, logs = [], []
    for r in range(trial.nranks):
        cmd = [args.rank_binary, "--seed", str(trial.seed), "--calls", str(trial.calls)]
        if trial.mode == "netns":
            cmd = ["ip", "netns", "exec", f"{args.netns}-{r}"] + cmd
        log = open(os.path.join(logdir, f"rank{r}.log"), "w+")
        logs.append(log)
        procs.append(subprocess.Popen(cmd, env=rank_env(trial, r, port, args), stdout=log, stderr=subprocess.STDOUT))
    started = time.time()
    victim = procs[trial.victim]
    fault_at = None
    if trial.point is None:
        time.sleep(trial.delay)
        if victim.poll() is None:
            victim.send_signal(signal.SIGKILL if trial.how == "kill" else signal.SIGSTOP)
            fault_at = time.time()
    # Wait for the survivors (and an injected fault to fire), noticing hangs.
    hard_deadline = started + args.timeout + 60
    while True:
        now = time.time()
        if fault_at is None and trial.point is not None:
            if victim.poll() is not None or proc_state(victim.pid) == "T":
                fault_at = now
        survivors_left = [p for i, p in enumerate(procs) if i != trial.victim and p.poll() is None]
        if not survivors_left:
            break
        limit = (fault_at + args.timeout + args.margin + 8) if fault_at else hard_deadline
        if fault_at is None and trial.point is not None and now > started + args.timeout + 10:
            break  # the point was never reached: reported below
        if now > limit:
            break
        time.sleep(0.01)
    hung = []
    for i, p in enumerate(procs):
        if i != trial.victim and p.poll() is None:
            hung.append(i)
            p.kill()
    if victim.poll() is None:
        victim.kill()
    for p in procs:
        p.wait()
    result = {"trial": trial.describe(), "mode": trial.mode, "how": trial.how, "point": trial.point, "hung": hung,
              "crashed": [], "wrong": [], "finished": [], "errors": [], "unnamed": [], "late": [], "problems": []}
    victim_code = victim.returncode
    fault_fired = fault_at is not None
    if trial.point is not None and not fault_fired:
        result["problems"].append(f"fault point {trial.point} was never reached by rank {trial.victim}")
    for i, p in enumerate(procs):
        logs[i].seek(0)
        text = logs[i].read()
        if i == trial.victim:
            continue
        code = p.returncode
        if i in hung:
            result["problems"].append(f"rank {i} hung")
            continue
        if code == 0:
            result["finished"].append(i)
            result["problems"].append(f"rank {i} finished every call although rank {trial.victim} was "
                                      f"{'stopped' if trial.how == 'stop' else 'killed'}")
            continue
        if code == 4:
            result["wrong"].append(i)
            result["problems"].append(f"rank {i} got a wrong result as success: {text.strip()[-300:]}")
            continue
        m = re.search(r"^error at=([0-9.]+) call=(-?\d+) code=([^:]+): (.*)$", text, re.M)
        if code != 3 or m is None:
            result["crashed"].append(i)
            result["problems"].append(f"rank {i} ended with status {code}: {text.strip()[-300:]}")
            continue
        at, message = float(m.group(1)), m.group(4)
        after = at - fault_at if fault_at else None
        result["errors"].append({"rank": i, "after": after, "code": m.group(3), "message": message[:400]})
        if not re.search(rf"\brank {trial.victim}\b", message):
            result["unnamed"].append(i)
        if after is not None and after > args.timeout + args.margin:
            result["late"].append(i)
            result["problems"].append(f"rank {i} failed {after:.2f} s after the fault (limit "
                                      f"{args.timeout + args.margin} s)")
    if fault_fired and trial.how == "kill" and victim_code != -signal.SIGKILL:
        result["problems"].append(f"the victim ended with status {victim_code}, not by the kill")
    left = shm_entries() - shm_before
    if left:
        # Survivors unlink what they know of only once they are gone; a moment's grace.
        time.sleep(0.2)
        left = shm_entries() - shm_before
    if left:
        result["problems"].append(f"left in /dev/shm: {sorted(left)}")
        result["shm_left"] = sorted(left)
    for log in logs:
        log.close()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rank-binary", required=True)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=None, help="the suite's seed (default: random, printed)")
    parser.add_argument("--timeout", type=int, default=3, help="WEFT_TIMEOUT for the ranks, seconds")
    parser.add_argument("--margin", type=float, default=2.0, help="seconds past WEFT_TIMEOUT a survivor may take")
    parser.add_argument("--calls", type=int, default=1000000, help="calls per job (the fault ends it long before)")
    parser.add_argument("--modes", default="shm,nodes")
    parser.add_argument("--netns", default=None, help="namespaces NAME-0.. (scripts/netns.sh up NAME 4)")
    parser.add_argument("--netns-nodes", type=int, default=4)
    parser.add_argument("--init-fraction", type=float, default=0.3, help="share of trials that fault in init")
    parser.add_argument("--report", default=None, help="write every trial's result here (JSON)")
    args = parser.parse_args()
    args.modes = [m for m in args.modes.split(",") if m]
    if "netns" in args.modes and not args.netns:
        parser.error("mode netns needs --netns NAME")
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    rng = random.Random(seed)
    print(f"fault suite: {args.trials} trials, seed {seed}, modes {','.join(args.modes)}, "
          f"WEFT_TIMEOUT={args.timeout}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as logdir:
        for index in range(args.trials):
            trial = Trial(index, rng, args)
            result = run_trial(trial, args, logdir)
            results.append(result)
            status = "FAIL " + "; ".join(result["problems"]) if result["problems"] else "ok"
            times = [e["after"] for e in result["errors"] if e["after"] is not None]
            detail = f"{len(result['errors'])} errors" + (f", slowest {max(times):.2f} s" if times else "")
            if result["finished"]:
                detail += f", ranks {result['finished']} finished every call"
            print(f"{trial.describe()}: {detail}: {status}", flush=True)
            for e in result["errors"]:
                if e["rank"] in result["unnamed"]:
                    print(f"  rank {e['rank']}'s error does not name rank {trial.victim}: {e['message']}", flush=True)
    errors = [e for r in results for e in r["errors"]]
    named = sum(1 for r in results for e in r["errors"] if e["rank"] not in r["unnamed"])
    times = sorted(e["after"] for e in errors if e["after"] is not None)
    failed = [r for r in results if r["problems"]]
    summary = {
        "seed": seed, "trials": len(results), "failed_trials": len(failed),
        "hangs": sum(len(r["hung"]) for r in results), "crashes": sum(len(r["crashed"]) for r in results),
        "wrong_results": sum(len(r["wrong"]) for r in results),
        "survivor_errors": len(errors), "named_victim": named,
        "named_fraction": named / len(errors) if errors else 1.0,
        "shm_left_trials": sum(1 for r in results if r.get("shm_left")),
        "time_to_error_median": statistics.median(times) if times else None,
        "time_to_error_max": times[-1] if times else None,
        "kill_trials": sum(1 for r in results if r["how"] == "kill"),
        "stop_trials": sum(1 for r in results if r["how"] == "stop"),
        "init_trials": sum(1 for r in results if r["point"]),
        "finished_before_fault": sum(len(r["finished"]) for r in results),
    }
    print("summary: " + json.dumps(summary), flush=True)
    if args.report:
        with open(args.report, "w") as f:
            json.dump({"summary": summary, "trials": results}, f, indent=1)
    ok = not failed and summary["named_fraction"] >= 0.99
    if not ok and not failed:
        print(f"FAIL: only {named} of {len(errors)} survivor errors name the victim")
    print("fault suite: " + ("every trial passed" if ok else f"{len(failed)} trial(s) failed"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
