#!/usr/bin/env python3
"""Writes two hwloc 2.0 XML topologies modelled by hand on public specifications
(no real export of these machines was available):

  dgxH100-synthetic.xml   modelled on the NVIDIA DGX H100 user guide and the
                          DGX H100 system topology: 2 sockets (Xeon Platinum
                          8480C; cores reduced to 8 per socket to keep the file
                          small), PCIe Gen5 switches each holding 2 H100 SXM5
                          GPUs and 2 ConnectX-7 400G NICs, 4 NVSwitches; every
                          GPU has 18 NVLink4 links (25 GB/s each) spread 5/4/4/5
                          over the NVSwitches.
  pcie8gpu-synthetic.xml  an 8-GPU PCIe box modelled on dual-socket 4U GPU servers
                          with 4 PCIe Gen3 switches (PEX 8747-class, 2 per socket),
                          2 GPUs per switch, no NVLink, one ConnectX-6 NIC on
                          socket 0's root complex.

Run it to regenerate both files; the tests read the files, not this script.
"""

import itertools


class Writer:
    def __init__(self):
        self.lines = []
        self.gp = itertools.count(2)

    def add(self, depth, text):
        self.lines.append("  " * depth + text)


def cpuset(bits):
    value = 0
    for b in bits:
        value |= 1 << b
    return "0x%08x" % value if value < (1 << 32) else "0x%08x,0x%08x" % (value >> 32, value & 0xFFFFFFFF)


def write(path, title, sockets, cores_per_socket, io_for_socket, hetero):
    """io_for_socket(w, depth, socket) writes that socket's I/O tree; hetero is
    (objects, matrix) for an NVLinkBandwidth matrix, or None."""
    w = Writer()
    pus = 2 * cores_per_socket
    all_pus = list(range(sockets * pus))
    nodes = "0x%08x" % ((1 << sockets) - 1)
    w.add(0, '<?xml version="1.0" encoding="UTF-8"?>')
    w.add(0, '<!DOCTYPE topology SYSTEM "hwloc2.dtd">')
    w.add(0, '<topology version="2.0">')
    cs = cpuset(all_pus)
    w.add(1, f'<object type="Machine" os_index="0" cpuset="{cs}" complete_cpuset="{cs}" allowed_cpuset="{cs}" '
             f'nodeset="{nodes}" complete_nodeset="{nodes}" allowed_nodeset="{nodes}" gp_index="1">')
    w.add(2, f'<info name="DMIProductName" value="{title}"/>')
    w.add(2, '<info name="Backend" value="Linux"/>')
    for s in range(sockets):
        bits = list(range(s * pus, (s + 1) * pus))
        scs = cpuset(bits)
        sns = "0x%08x" % (1 << s)
        w.add(2, f'<object type="Package" os_index="{s}" cpuset="{scs}" complete_cpuset="{scs}" nodeset="{sns}" '
                 f'complete_nodeset="{sns}" gp_index="{next(w.gp)}">')
        w.add(3, f'<object type="NUMANode" os_index="{s}" cpuset="{scs}" complete_cpuset="{scs}" nodeset="{sns}" '
                 f'complete_nodeset="{sns}" gp_index="{next(w.gp)}" local_memory="{1024 ** 4}"/>')
        for c in range(cores_per_socket):
            core_bits = [s * pus + 2 * c, s * pus + 2 * c + 1]
            ccs = cpuset(core_bits)
            w.add(3, f'<object type="Core" os_index="{s * 100 + c}" cpuset="{ccs}" complete_cpuset="{ccs}" '
                     f'nodeset="{sns}" complete_nodeset="{sns}" gp_index="{next(w.gp)}">')
            for b in core_bits:
                pcs = cpuset([b])
                w.add(4, f'<object type="PU" os_index="{b}" cpuset="{pcs}" complete_cpuset="{pcs}" nodeset="{sns}" '
                         f'complete_nodeset="{sns}" gp_index="{next(w.gp)}"/>')
            w.add(3, '</object>')
        io_for_socket(w, 3, s)
        w.add(2, '</object>')
    w.add(1, '</object>')
    if hetero is not None:
        objects, matrix = hetero
        text = " ".join(objects) + " "
        w.add(1, f'<distances2hetero nbobjs="{len(objects)}" kind="25" name="NVLinkBandwidth">')
        w.add(2, f'<indexes length="{len(text)}">{text}</indexes>')
        values = [v for row in matrix for v in row]
        for start in range(0, len(values), 10):
            chunk = " ".join(str(v) for v in values[start:start + 10]) + " "
            w.add(2, f'<u64values length="{len(chunk)}">{chunk}</u64values>')
        w.add(1, '</distances2hetero>')
    w.add(0, '</topology>')
    with open(path, "w") as f:
        f.write("\n".join(w.lines[0:2]) + "\n")
        f.write(f"<!-- {title}: written by make_synthetic_topologies.py, modelled on public specifications"
                " (see the script); not an export of a real machine. -->\n")
        f.write("\n".join(w.lines[2:]) + "\n")


def pci(w, depth, busid, cls, vendor, device, link, model, osdevs=()):
    gp = next(w.gp)
    w.add(depth, f'<object type="PCIDev" gp_index="{gp}" pci_busid="{busid}" pci_type="{cls} [{vendor}:{device}] '
                 f'[{vendor}:0000] a1" pci_link_speed="{link}">')
    w.add(depth + 1, f'<info name="PCIDevice" value="{model}"/>')
    osdev_gps = []
    for name, kind in osdevs:
        og = next(w.gp)
        osdev_gps.append(og)
        w.add(depth + 1, f'<object type="OSDev" gp_index="{og}" name="{name}" osdev_type="{kind}"/>')
    w.add(depth, '</object>')
    return gp, osdev_gps


def bridge(w, depth, busid, secondary, subordinate, link):
    gp = next(w.gp)
    w.add(depth, f'<object type="Bridge" gp_index="{gp}" bridge_type="1-1" depth="1" '
                 f'bridge_pci="0000:[{secondary:02x}-{subordinate:02x}]" pci_busid="{busid}" '
                 f'pci_type="0604 [1000:c030] [1000:0000] 00" pci_link_speed="{link}">')
    return gp


def host_bridge(w, depth, socket):
    """Opens socket's root complex (buses 0x10 + 0x80*socket onwards); returns its first bus."""
    base = 0x10 + 0x80 * socket
    w.add(depth, f'<object type="Bridge" gp_index="{next(w.gp)}" bridge_type="0-1" depth="0" '
                 f'bridge_pci="0000:[{base:02x}-{base + 0x7f:02x}]">')
    return base


def gpu_switches(w, depth, base, socket, link, device, model, gpu_osdevs, after_gpu=None):
    """The socket's two PCIe switches, two GPUs under each; after_gpu(depth, bus, k, index) may add a
    device beside each GPU (DGX H100: its NIC). Returns the GPUs' OS device gp indices."""
    osdevs = []
    for sw in range(2):
        bus = base + 0x20 * sw
        bridge(w, depth, f"0000:{bus:02x}:00.0", bus + 1, bus + 0x1f, link)
        for k in range(2):
            index = 4 * socket + 2 * sw + k
            _, og = pci(w, depth + 1, f"0000:{bus + 2 + k:02x}:00.0", "0302", "10de", device, link, model,
                        [(f"nvml{gpu_osdevs + len(osdevs)}", 5)])
            osdevs.append(og[0])
            if after_gpu is not None:
                after_gpu(depth + 1, bus, k, index)
        w.add(depth, '</object>')
    return osdevs


GEN5 = "63.015385"
GEN3 = "15.753846"


def dgx_h100():
    gpus, switches = [], []  # (osdev gp) and (pci gp)

    def io(w, depth, socket):
        base = host_bridge(w, depth, socket)

        def nic(depth, bus, k, n):  # each GPU's ConnectX-7 under the same switch
            pci(w, depth, f"0000:{bus + 4 + k:02x}:00.0", "0207", "15b3", "1021", GEN5,
                "MT2910 Family [ConnectX-7]", [(f"mlx5_{n}", 3), (f"ib{n}", 2)])

        gpus.extend(gpu_switches(w, depth + 1, base, socket, GEN5, "2330", "GH100 [H100 SXM5 80GB]", len(gpus), nic))
        # Two of the four NVSwitches per socket's root complex.
        for k in range(2):
            gp, _ = pci(w, depth + 1, f"0000:{base + 0x60 + k:02x}:00.0", "0680", "10de", "22a3", GEN5,
                        "GH100 [H100 NVSwitch]")
            switches.append(gp)
        w.add(depth, '</object>')

    # Written once to learn the gp indices, then again with the matrix.
    write("/dev/null", "DGX H100 (synthetic)", 2, 8, io, None)
    objects = [f"OSDev:{g}" for g in gpus] + [f"PCIDev:{s}" for s in switches]
    links = [5, 4, 4, 5]  # NVLink4 links from each GPU to each NVSwitch, 25 GB/s each
    n = len(objects)
    matrix = [[0] * n for _ in range(n)]
    for g in range(8):
        matrix[g][g] = 1000000
        for s in range(4):
            matrix[g][8 + s] = matrix[8 + s][g] = 25000 * links[s]
    for s in range(4):
        matrix[8 + s][8 + s] = 1000000
    gpus.clear()
    switches.clear()
    write("dgxH100-synthetic.xml", "DGX H100 (synthetic)", 2, 8, io, (objects, matrix))


def pcie8():
    def io(w, depth, socket):
        base = host_bridge(w, depth, socket)
        gpu_switches(w, depth + 1, base, socket, GEN3, "1db6", "GV100GL [Tesla V100 PCIe 32GB]", 4 * socket)
        if socket == 0:
            pci(w, depth + 1, f"0000:{base + 0x70:02x}:00.0", "0207", "15b3", "101b", GEN3,
                "MT28908 Family [ConnectX-6]", [("mlx5_0", 3), ("ib0", 2)])
        w.add(depth, '</object>')

    write("pcie8gpu-synthetic.xml", "8-GPU PCIe server (synthetic)", 2, 8, io, None)


if __name__ == "__main__":
    dgx_h100()
    pcie8()
