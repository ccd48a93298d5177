# Checks that need nixpkgs (run by `nix flake check` on a machine with network, not offline): the
# module evaluated by the real NixOS module system for each example host of ./examples.nix, its unit
# and config file built, and that config file loaded by the real panther; and a VM running the
# service.
{
  pkgs,
  nixpkgs,
  module,
  package,
}:
let
  inherit (pkgs) lib;
  examples = import ./examples.nix;

  # OpNix is not part of nixpkgs: a stand-in declares its options loosely so that the examples can
  # set them as a host importing OpNix would.
  opnixStandIn = {
    options.services.onepassword-secrets = lib.mkOption {
      type = lib.types.attrsOf lib.types.anything;
      default = { };
    };
  };

  evalHost =
    name:
    nixpkgs.lib.nixosSystem {
      inherit (pkgs.stdenv.hostPlatform) system;
      modules = [
        module
        opnixStandIn
        examples.${name}
        {
          boot.isContainer = true;
          system.stateVersion = "25.11";
        }
      ];
    };

  evalCheck =
    name:
    let
      host = evalHost name;
      inherit (host) config;
      failed = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
      cfg = config.services.panther;
      # A worker-only host has panther-worker.service and no server.
      unitName = if cfg.enable then "panther.service" else "panther-worker.service";
      execWants =
        if cfg.enable then
          ''"serve" "--addr" "${cfg.serve.address}"''
        else
          ''"worker"'';
      unit = config.systemd.units.${unitName}.unit;
      configFile = config.environment.etc."panther/config.toml".source;
    in
    if failed != [ ] then
      throw "example ${name}: failed assertions:\n${lib.concatStringsSep "\n" failed}"
    else
      pkgs.runCommand "panther-module-${name}"
        {
          nativeBuildInputs = [ package ];
        }
        ''
          set -euo pipefail
          unit=${unit}/${unitName}
          cat "$unit"
          grep -F 'ExecStart=' "$unit" | grep -F ${lib.escapeShellArg execWants}
          grep -Fx 'ProtectSystem=strict' "$unit"
          grep -Fx 'NoNewPrivileges=true' "$unit"
          grep -Fx 'MemoryDenyWriteExecute=true' "$unit"
          # Lists become one line per element.
          for family in AF_INET AF_INET6 AF_UNIX; do grep -Fx "RestrictAddressFamilies=$family" "$unit"; done
          grep -Fx 'CapabilityBoundingSet=' "$unit"
          grep -Fx 'SystemCallFilter=@system-service' "$unit"
          grep -F 'X-Restart-Triggers=' "$unit"
          cat ${configFile}
          # panther refuses a key it does not know or a value of the wrong type: the service would
          # not start with such a file.
          HOME=$TMPDIR panther config check ${configFile}
          touch $out
        '';

  # The timers' OnCalendar= values as systemd itself parses them.
  calendarCheck =
    name:
    let
      inherit ((evalHost name)) config;
      timers = lib.filterAttrs (n: _: lib.hasPrefix "panther-crawl-" n) config.systemd.timers;
      calendars = lib.mapAttrsToList (_: t: t.timerConfig.OnCalendar) timers;
    in
    pkgs.runCommand "panther-calendars-${name}" { nativeBuildInputs = [ pkgs.systemd ]; } ''
      ${lib.concatMapStrings (c: "systemd-analyze calendar ${lib.escapeShellArg c}\n") calendars}
      touch $out
    '';

  vm = pkgs.testers.runNixOSTest {
    name = "panther";
    nodes.machine = {
      imports = [ module ];
      services.panther = {
        enable = true;
        role = "server";
        owner = "ci";
      };
      environment.systemPackages = [ pkgs.curl ];
    };
    testScript = ''
      machine.wait_for_unit("panther.service")
      machine.wait_for_open_port(7777)
      machine.succeed("curl -fsS http://127.0.0.1:7777/healthz")
      machine.succeed("test -f /var/lib/panther/panther.db")
      machine.succeed("test \"$(stat -c %U /var/lib/panther/panther.db)\" = panther")
      machine.succeed("systemctl show panther.service -p ProtectSystem | grep -Fx ProtectSystem=strict")
      machine.succeed("systemctl show panther.service -p MemoryDenyWriteExecute | grep -Fx MemoryDenyWriteExecute=yes")
      print(machine.succeed("systemd-analyze security panther.service --no-pager | tail -n 1"))
      machine.succeed("systemctl restart panther.service")
      machine.wait_for_open_port(7777)
    '';
  };
in
{
  inherit
    evalHost
    evalCheck
    calendarCheck
    vm
    ;
}
