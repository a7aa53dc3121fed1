#!/usr/bin/python3
"""cri-client - a small client of the Kubernetes Container Runtime Interface (CRI, runtime.v1) for the
containerd CRI suite (tests/clients/cri.bats): it speaks to containerd's CRI plugin over gRPC as the
kubelet (or crictl) does.

crictl is not packaged for Debian 12, so the suite has its own client. The messages are declared below with
only the fields the suite uses (names and numbers as in the CRI's api.proto) and encoded and decoded by hand
in protobuf's wire format; grpcio (Debian's python3-grpcio) carries them. Configurations go in as JSON with
the proto field names (like crictl's pod and container files), answers come out as JSON.

Usage: cri-client.py --address SOCKET COMMAND [ARGS]
  version | status
  runp [--runtime HANDLER] POD.json          RunPodSandbox; prints the pod sandbox id
  inspectp ID | stopp ID | rmp ID | pods     PodSandboxStatus, StopPodSandbox, RemovePodSandbox, ListPodSandbox
  rmpods                                     stop and remove every pod, then print the pods and containers
                                             still listed (one call for a test's cleanup)
  create POD_ID CONTAINER.json POD.json      CreateContainer; prints the container id
  start ID | stop [--timeout S] ID | rm ID   StartContainer, StopContainer, RemoveContainer
  inspect ID | ps [--pod ID]                 ContainerStatus, ListContainers
  exec [--timeout S] ID CMD...               ExecSync: the command's stdout and stderr, its exit status
  stats ID                                   ContainerStats
  update ID RESOURCES.json                   UpdateContainerResources (LinuxContainerResources)
A failed call prints the method and gRPC status and exits 125. CRI_CLIENT_TIMINGS=FILE appends
"<method>\\t<milliseconds>" for each call (the gRPC round trip alone, without this program's start-up).
"""

import argparse
import json
import os
import struct
import sys
import time

import grpc

# --- the messages: field name -> (number, type); a type is a scalar, "map" (string to string), a message
# name, or ("repeated", type). Enums are varints.
ENUMS = {
    "NamespaceMode": ["POD", "CONTAINER", "NODE", "TARGET"],
    "PodSandboxState": ["SANDBOX_READY", "SANDBOX_NOTREADY"],
    "ContainerState": ["CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED", "CONTAINER_UNKNOWN"],
}
MESSAGES = {
    "VersionRequest": {"version": (1, "string")},
    "VersionResponse": {"version": (1, "string"), "runtime_name": (2, "string"),
                        "runtime_version": (3, "string"), "runtime_api_version": (4, "string")},
    "StatusRequest": {"verbose": (1, "bool")},
    "StatusResponse": {"status": (1, "RuntimeStatus")},
    "RuntimeStatus": {"conditions": (1, ("repeated", "RuntimeCondition"))},
    "RuntimeCondition": {"type": (1, "string"), "status": (2, "bool"), "reason": (3, "string"),
                         "message": (4, "string")},
    "Int64Value": {"value": (1, "int64")},
    "UInt64Value": {"value": (1, "uint64")},
    "KeyValue": {"key": (1, "string"), "value": (2, "string")},
    "NamespaceOption": {"network": (1, "NamespaceMode"), "pid": (2, "NamespaceMode"), "ipc": (3, "NamespaceMode"),
                        "target_id": (4, "string")},
    "PodSandboxMetadata": {"name": (1, "string"), "uid": (2, "string"), "namespace": (3, "string"),
                           "attempt": (4, "uint32")},
    "LinuxSandboxSecurityContext": {"namespace_options": (1, "NamespaceOption"), "run_as_user": (3, "Int64Value"),
                                    "readonly_rootfs": (4, "bool"), "privileged": (6, "bool")},
    "LinuxPodSandboxConfig": {"cgroup_parent": (1, "string"), "security_context": (2, "LinuxSandboxSecurityContext"),
                              "sysctls": (3, "map")},
    "PodSandboxConfig": {"metadata": (1, "PodSandboxMetadata"), "hostname": (2, "string"),
                         "log_directory": (3, "string"), "labels": (6, "map"), "annotations": (7, "map"),
                         "linux": (8, "LinuxPodSandboxConfig")},
    "RunPodSandboxRequest": {"config": (1, "PodSandboxConfig"), "runtime_handler": (2, "string")},
    "RunPodSandboxResponse": {"pod_sandbox_id": (1, "string")},
    "PodSandboxIdRequest": {"pod_sandbox_id": (1, "string")},  # Stop- and RemovePodSandboxRequest
    "PodSandboxStatusRequest": {"pod_sandbox_id": (1, "string"), "verbose": (2, "bool")},
    "PodSandboxNetworkStatus": {"ip": (1, "string")},
    "PodSandboxStatus": {"id": (1, "string"), "metadata": (2, "PodSandboxMetadata"), "state": (3, "PodSandboxState"),
                         "created_at": (4, "int64"), "network": (5, "PodSandboxNetworkStatus"),
                         "labels": (7, "map"), "annotations": (8, "map"), "runtime_handler": (9, "string")},
    "PodSandboxStatusResponse": {"status": (1, "PodSandboxStatus"), "info": (2, "map")},
    "ListPodSandboxRequest": {},
    "PodSandbox": {"id": (1, "string"), "metadata": (2, "PodSandboxMetadata"), "state": (3, "PodSandboxState"),
                   "runtime_handler": (7, "string")},
    "ListPodSandboxResponse": {"items": (1, ("repeated", "PodSandbox"))},
    "ImageSpec": {"image": (1, "string")},
    "ContainerMetadata": {"name": (1, "string"), "attempt": (2, "uint32")},
    "Mount": {"container_path": (1, "string"), "host_path": (2, "string"), "readonly": (3, "bool")},
    "LinuxContainerResources": {"cpu_period": (1, "int64"), "cpu_quota": (2, "int64"), "cpu_shares": (3, "int64"),
                                "memory_limit_in_bytes": (4, "int64"), "oom_score_adj": (5, "int64"),
                                "cpuset_cpus": (6, "string"), "cpuset_mems": (7, "string")},
    "Capability": {"add_capabilities": (1, ("repeated", "string")),
                   "drop_capabilities": (2, ("repeated", "string"))},
    "LinuxContainerSecurityContext": {"capabilities": (1, "Capability"), "privileged": (2, "bool"),
                                      "namespace_options": (3, "NamespaceOption"), "run_as_user": (5, "Int64Value"),
                                      "run_as_group": (12, "Int64Value"), "readonly_rootfs": (7, "bool"),
                                      "supplemental_groups": (8, ("repeated", "int64")), "no_new_privs": (11, "bool")},
    "LinuxContainerConfig": {"resources": (1, "LinuxContainerResources"),
                             "security_context": (2, "LinuxContainerSecurityContext")},
    "ContainerConfig": {"metadata": (1, "ContainerMetadata"), "image": (2, "ImageSpec"),
                        "command": (3, ("repeated", "string")), "args": (4, ("repeated", "string")),
                        "working_dir": (5, "string"), "envs": (6, ("repeated", "KeyValue")),
                        "mounts": (7, ("repeated", "Mount")), "labels": (9, "map"), "annotations": (10, "map"),
                        "log_path": (11, "string"), "stdin": (12, "bool"), "tty": (14, "bool"),
                        "linux": (15, "LinuxContainerConfig")},
    "CreateContainerRequest": {"pod_sandbox_id": (1, "string"), "config": (2, "ContainerConfig"),
                               "sandbox_config": (3, "PodSandboxConfig")},
    "CreateContainerResponse": {"container_id": (1, "string")},
    "ContainerIdRequest": {"container_id": (1, "string")},  # Start-, Remove- and ContainerStatsRequest
    "StopContainerRequest": {"container_id": (1, "string"), "timeout": (2, "int64")},
    "ContainerStatusRequest": {"container_id": (1, "string"), "verbose": (2, "bool")},
    "ContainerStatus": {"id": (1, "string"), "metadata": (2, "ContainerMetadata"), "state": (3, "ContainerState"),
                        "created_at": (4, "int64"), "started_at": (5, "int64"), "finished_at": (6, "int64"),
                        "exit_code": (7, "int32"), "image": (8, "ImageSpec"), "image_ref": (9, "string"),
                        "reason": (10, "string"), "message": (11, "string"), "labels": (12, "map"),
                        "annotations": (13, "map"), "log_path": (15, "string")},
    "ContainerStatusResponse": {"status": (1, "ContainerStatus"), "info": (2, "map")},
    "ContainerFilter": {"id": (1, "string"), "pod_sandbox_id": (3, "string")},
    "ListContainersRequest": {"filter": (1, "ContainerFilter")},
    "Container": {"id": (1, "string"), "pod_sandbox_id": (2, "string"), "metadata": (3, "ContainerMetadata"),
                  "state": (6, "ContainerState")},
    "ListContainersResponse": {"containers": (1, ("repeated", "Container"))},
    "ExecSyncRequest": {"container_id": (1, "string"), "cmd": (2, ("repeated", "string")), "timeout": (3, "int64")},
    "ExecSyncResponse": {"stdout": (1, "bytes"), "stderr": (2, "bytes"), "exit_code": (3, "int32")},
    "ContainerAttributes": {"id": (1, "string"), "metadata": (2, "ContainerMetadata")},
    "CpuUsage": {"timestamp": (1, "int64"), "usage_core_nano_seconds": (2, "UInt64Value"),
                 "usage_nano_cores": (3, "UInt64Value")},
    "MemoryUsage": {"timestamp": (1, "int64"), "working_set_bytes": (2, "UInt64Value"),
                    "available_bytes": (3, "UInt64Value"), "usage_bytes": (4, "UInt64Value"),
                    "rss_bytes": (5, "UInt64Value"), "page_faults": (6, "UInt64Value"),
                    "major_page_faults": (7, "UInt64Value")},
    "ContainerStats": {"attributes": (1, "ContainerAttributes"), "cpu": (2, "CpuUsage"), "memory": (3, "MemoryUsage")},
    "ContainerStatsResponse": {"stats": (1, "ContainerStats")},
    "UpdateContainerResourcesRequest": {"container_id": (1, "string"), "linux": (2, "LinuxContainerResources")},
    "Empty": {},
}
VARINT_TYPES = {"bool", "int32", "int64", "uint32", "uint64"} | set(ENUMS)


class CriClientError(Exception):
    pass


# --- protobuf wire format
def varint(n):
    n &= (1 << 64) - 1  # negative int32/int64: two's complement in ten bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire_type, payload):
    key = varint(num << 3 | wire_type)
    if wire_type == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def encode_value(kind, value, where):
    if kind in ENUMS:
        if isinstance(value, str):
            if value not in ENUMS[kind]:
                raise CriClientError(f"{where}: {value!r} is not one of {ENUMS[kind]}")
            value = ENUMS[kind].index(value)
        return 0, int(value)
    if kind in VARINT_TYPES:
        if kind == "bool" and not isinstance(value, bool):
            raise CriClientError(f"{where}: expected true or false, got {value!r}")
        return 0, int(value)
    if kind == "string":
        return 2, str(value).encode()
    if kind == "bytes":
        return 2, value if isinstance(value, bytes) else str(value).encode()
    return 2, encode(kind, value, where)


def encode(name, obj, where=None):
    where = where or name
    schema = MESSAGES[name]
    if not isinstance(obj, dict):
        raise CriClientError(f"{where}: expected an object, got {obj!r}")
    out = bytearray()
    for key, value in obj.items():
        if key not in schema:
            raise CriClientError(f"{where}: unknown field {key!r} (this client declares {sorted(schema)})")
        num, kind = schema[key]
        path = f"{where}.{key}"
        if kind == "map":
            for k, v in value.items():
                entry = field(1, 2, str(k).encode()) + field(2, 2, str(v).encode())
                out += field(num, 2, entry)
        elif isinstance(kind, tuple):
            for i, item in enumerate(value):
                out += field(num, *encode_value(kind[1], item, f"{path}[{i}]"))
        else:
            out += field(num, *encode_value(kind, value, path))
    return bytes(out)


def read_varint(data, pos):
    shift = n = 0
    while True:
        if pos >= len(data):
            raise CriClientError("truncated varint in an answer")
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def fields(data):
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        num, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = read_varint(data, pos)
        elif wire_type == 2:
            size, pos = read_varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire_type == 1:
            value, pos = struct.unpack_from("<Q", data, pos)[0], pos + 8
        elif wire_type == 5:
            value, pos = struct.unpack_from("<I", data, pos)[0], pos + 4
        else:
            raise CriClientError(f"unsupported wire type {wire_type} in an answer")
        yield num, value


def decode_value(kind, value):
    if kind in ENUMS:
        names = ENUMS[kind]
        return names[value] if value < len(names) else value
    if kind == "bool":
        return bool(value)
    if kind in ("int32", "int64"):
        return value - (1 << 64) if value >= 1 << 63 else value
    if kind in VARINT_TYPES:
        return value
    if kind == "string":
        return value.decode()
    if kind == "bytes":
        return value.decode(errors="replace")
    return decode(kind, value)


def decode(name, data):
    by_num = {num: (key, kind) for key, (num, kind) in MESSAGES[name].items()}
    out = {}
    for num, value in fields(data):
        if num not in by_num:
            continue  # a field this client does not declare
        key, kind = by_num[num]
        if kind == "map":
            entry = dict(fields(value))
            out.setdefault(key, {})[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
        elif isinstance(kind, tuple):
            out.setdefault(key, []).append(decode_value(kind[1], value))
        else:
            out[key] = decode_value(kind, value)
    # proto3 leaves out fields that have their default value (a READY pod's state is 0): fill them in, as a
    # generated client would, so that the suite can compare fields that are always there.
    for key, (_, kind) in MESSAGES[name].items():
        if key in out:
            continue
        if kind == "map":
            out[key] = {}
        elif isinstance(kind, tuple):
            out[key] = []
        elif kind in ENUMS:
            out[key] = ENUMS[kind][0]
        elif kind == "bool":
            out[key] = False
        elif kind in VARINT_TYPES:
            out[key] = 0
        elif kind in ("string", "bytes"):
            out[key] = ""
    return out


# --- the services
class Cri:
    def __init__(self, address):
        target = address if address.startswith("unix:") else "unix:" + address
        self.channel = grpc.insecure_channel(target)
        self.timings = os.environ.get("CRI_CLIENT_TIMINGS")

    def call(self, method, request_type, request, response_type="Empty", service="RuntimeService"):
        path = f"/runtime.v1.{service}/{method}"
        rpc = self.channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        payload = encode(request_type, request)
        start = time.monotonic()
        try:
            answer = rpc(payload, timeout=120)
        except grpc.RpcError as e:
            raise CriClientError(f"{method}: {e.code().name}: {e.details()}") from None
        elapsed_ms = (time.monotonic() - start) * 1000
        if self.timings:
            with open(self.timings, "a") as f:
                f.write(f"{method}\t{elapsed_ms:.1f}\n")
        return decode(response_type, answer)


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise CriClientError(f"read {path}: {e}") from None


def main(argv):
    p = argparse.ArgumentParser(prog="cri-client.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--address", required=True, help="containerd's socket")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version")
    sub.add_parser("status")
    s = sub.add_parser("runp")
    s.add_argument("--runtime", default="")
    s.add_argument("pod_config")
    for name in ("inspectp", "stopp", "rmp", "start", "rm", "inspect", "stats"):
        sub.add_parser(name).add_argument("id")
    sub.add_parser("pods")
    sub.add_parser("rmpods")
    s = sub.add_parser("create")
    s.add_argument("pod_id")
    s.add_argument("container_config")
    s.add_argument("pod_config")
    s = sub.add_parser("stop")
    s.add_argument("--timeout", type=int, default=0)
    s.add_argument("id")
    s = sub.add_parser("ps")
    s.add_argument("--pod", default="")
    s = sub.add_parser("exec")
    s.add_argument("--timeout", type=int, default=0)
    s.add_argument("id")
    s.add_argument("command", nargs=argparse.REMAINDER)
    s = sub.add_parser("update")
    s.add_argument("id")
    s.add_argument("resources")
    a = p.parse_args(argv)

    cri = Cri(a.address)
    show = lambda obj: print(json.dumps(obj, indent=2, sort_keys=True))  # noqa: E731
    if a.cmd == "version":
        show(cri.call("Version", "VersionRequest", {"version": "v1"}, "VersionResponse"))
    elif a.cmd == "status":
        show(cri.call("Status", "StatusRequest", {}, "StatusResponse"))
    elif a.cmd == "runp":
        req = {"config": load_json(a.pod_config), "runtime_handler": a.runtime}
        print(cri.call("RunPodSandbox", "RunPodSandboxRequest", req, "RunPodSandboxResponse")["pod_sandbox_id"])
    elif a.cmd == "inspectp":
        show(cri.call("PodSandboxStatus", "PodSandboxStatusRequest", {"pod_sandbox_id": a.id},
                      "PodSandboxStatusResponse")["status"])
    elif a.cmd == "stopp":
        cri.call("StopPodSandbox", "PodSandboxIdRequest", {"pod_sandbox_id": a.id})
    elif a.cmd == "rmp":
        cri.call("RemovePodSandbox", "PodSandboxIdRequest", {"pod_sandbox_id": a.id})
    elif a.cmd == "pods":
        for pod in cri.call("ListPodSandbox", "ListPodSandboxRequest", {}, "ListPodSandboxResponse")["items"]:
            print(pod["id"])
    elif a.cmd == "rmpods":
        failed = []
        for pod in cri.call("ListPodSandbox", "ListPodSandboxRequest", {}, "ListPodSandboxResponse")["items"]:
            for method in ("StopPodSandbox", "RemovePodSandbox"):
                try:
                    cri.call(method, "PodSandboxIdRequest", {"pod_sandbox_id": pod["id"]})
                except CriClientError as e:
                    failed.append(str(e))
        for pod in cri.call("ListPodSandbox", "ListPodSandboxRequest", {}, "ListPodSandboxResponse")["items"]:
            print(f"pod {pod['id']} {pod['metadata'].get('name', '')} {pod['state']}")
        for c in cri.call("ListContainers", "ListContainersRequest", {}, "ListContainersResponse")["containers"]:
            print(f"container {c['id']} {c['metadata'].get('name', '')} {c['state']}")
        if failed:
            raise CriClientError("; ".join(failed))
    elif a.cmd == "create":
        req = {"pod_sandbox_id": a.pod_id, "config": load_json(a.container_config),
               "sandbox_config": load_json(a.pod_config)}
        print(cri.call("CreateContainer", "CreateContainerRequest", req, "CreateContainerResponse")["container_id"])
    elif a.cmd == "start":
        cri.call("StartContainer", "ContainerIdRequest", {"container_id": a.id})
    elif a.cmd == "stop":
        cri.call("StopContainer", "StopContainerRequest", {"container_id": a.id, "timeout": a.timeout})
    elif a.cmd == "rm":
        cri.call("RemoveContainer", "ContainerIdRequest", {"container_id": a.id})
    elif a.cmd == "inspect":
        show(cri.call("ContainerStatus", "ContainerStatusRequest", {"container_id": a.id},
                      "ContainerStatusResponse")["status"])
    elif a.cmd == "ps":
        req = {"filter": {"pod_sandbox_id": a.pod}} if a.pod else {}
        for c in cri.call("ListContainers", "ListContainersRequest", req, "ListContainersResponse")["containers"]:
            print(c["id"])
    elif a.cmd == "exec":
        command = a.command[1:] if a.command[:1] == ["--"] else a.command
        req = {"container_id": a.id, "cmd": command, "timeout": a.timeout}
        answer = cri.call("ExecSync", "ExecSyncRequest", req, "ExecSyncResponse")
        sys.stdout.write(answer["stdout"])
        sys.stderr.write(answer["stderr"])
        return answer["exit_code"]
    elif a.cmd == "stats":
        show(cri.call("ContainerStats", "ContainerIdRequest", {"container_id": a.id},
                      "ContainerStatsResponse")["stats"])
    elif a.cmd == "update":
        req = {"container_id": a.id, "linux": load_json(a.resources)}
        cri.call("UpdateContainerResources", "UpdateContainerResourcesRequest", req)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except CriClientError as e:
        print(f"cri-client: {e}", file=sys.stderr)
        sys.exit(125)
