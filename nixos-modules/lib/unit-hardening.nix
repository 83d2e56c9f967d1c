# systemd sandboxing of the lab's own units (builtins only, so the checks here read it).
#
# `service`: what nixpkgs' own service modules set (grafana, prometheus, attic), plus a
# private user namespace (the unit's user and group map to themselves, so files keep their
# owners; everyone else appears as nobody), no system calls that change scheduling or
# resource limits (`~@resources`), and no IP traffic (`IPAddressDeny=any`) except what a unit
# allows with `IPAddressAllow` (allow wins over deny).
# `withoutIPCRemoval`: the same for units of a user whose IPC objects must outlive them:
# PostgreSQL's superuser (the server's shared memory), root.
# `noNetwork`: for units that need no network at all; socket files (PostgreSQL's) stay
# reachable, abstract sockets and every interface but lo do not.
let
  service = {
    CapabilityBoundingSet = [""];
    DeviceAllow = [""];
    IPAddressDeny = "any";
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    NoNewPrivileges = true;
    PrivateDevices = true;
    PrivateTmp = true;
    PrivateUsers = true;
    ProcSubset = "pid";
    ProtectClock = true;
    ProtectControlGroups = true;
    ProtectHome = true;
    ProtectHostname = true;
    ProtectKernelLogs = true;
    ProtectKernelModules = true;
    ProtectKernelTunables = true;
    ProtectProc = "invisible";
    ProtectSystem = "strict";
    RemoveIPC = true;
    RestrictAddressFamilies = ["AF_INET" "AF_INET6" "AF_UNIX"];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    SystemCallArchitectures = "native";
    SystemCallFilter = ["@system-service" "~@privileged" "~@resources"];
  };
in {
  inherit service;
  withoutIPCRemoval = removeAttrs service ["RemoveIPC"];
  noNetwork = {
    PrivateNetwork = true;
    RestrictAddressFamilies = ["AF_UNIX"];
  };
}
