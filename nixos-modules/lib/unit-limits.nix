# MemoryMax and TasksMax of every unit the lab defines, and of the nixpkgs units it caps, from
# unit-limits.json (the reason for each value is beside it there, and in the README's limits
# table). Builtins only: `nix-instantiate --eval --strict` checks it here.
let
  inherit ((builtins.fromJSON (builtins.readFile ./unit-limits.json))) units;
in
  builtins.mapAttrs (_: unit: {
    inherit (unit) memoryMiB;
    serviceConfig = {
      MemoryMax = "${toString unit.memoryMiB}M";
      TasksMax = unit.tasks;
    };
  })
  units
