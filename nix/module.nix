# The NixOS module: services.panther runs `panther serve` as a hardened systemd service configured by
# /etc/panther/config.toml. What it decides (settings, the unit, assertions) lives in ./lib.nix, which
# scripts/nix-check.sh tests without nixpkgs; this file declares the options and wires them.
#
# The unit can write only dataDir and sees no /home (ProtectHome): agent definitions or documents
# kept elsewhere need, e.g., systemd.services.panther.serviceConfig.ProtectHome = lib.mkForce "read-only".
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.panther;
  pantherLib = import ./lib.nix;
  inherit (lib) mkOption types;

  settingsFormat = pkgs.formats.toml { };

  finalSettings = pantherLib.finalSettings {
    inherit (cfg)
      settings
      dataDir
      secretFiles
      secretDelivery
      tokens
      ;
  };
  configFile = settingsFormat.generate "panther-config.toml" finalSettings;

  listen = pantherLib.parseListen cfg.listenAddress;

  # A string that names a secret: a reference panther resolves, never the value.
  secretRef = types.strMatching "(op://|file:/|env:).+";

  # OpNix (services.onepassword-secrets) when the host imports and enables it: panther then starts
  # after it has written the secrets and restarts when the references it maps change.
  opnix = config.services.onepassword-secrets or null;
  opnixEnabled = opnix != null && (opnix.enable or false);
  opnixPaths = if opnixEnabled then opnix.secretPaths or { } else { };
  ourPaths = builtins.attrValues cfg.secretFiles;
  opnixNames = builtins.filter (n: builtins.elem opnixPaths.${n} ourPaths) (builtins.attrNames opnixPaths);
  opnixReferences = map (n: opnix.secrets.${n}.reference or n) opnixNames;
  unmatchedPaths = builtins.filter (p: !(builtins.elem p (builtins.attrValues opnixPaths))) ourPaths;
  unreadableNames = builtins.filter (n: (opnix.secrets.${n}.owner or "root") != cfg.user) opnixNames;
in
{
  options.services.panther = {
    enable = lib.mkEnableOption "panther, the documentation crawler, knowledge base and agent server";

    package = mkOption {
      type = types.package;
      default = pkgs.panther;
      defaultText = lib.literalExpression "pkgs.panther";
      description = "The panther package (the flake's nixosModules.default sets its own).";
    };

    settings = mkOption {
      type = settingsFormat.type;
      default = { };
      example = lib.literalExpression ''
        {
          model = "zai/glm-4.6";
          providers.zai = {
            wire = "openai";
            base_url = "https://api.z.ai/api/coding/paas/v4";
            api_key = "op://pantherOS/zai-coding-plan-api/default/apiKey";
          };
          embedder.kind = "builtin";
          web.allow = [ "100.64.0.0/10" ];
        }
      '';
      description = ''
        panther's configuration (config.example.toml documents every key), written to
        ${pantherLib.configPath}. The file lands in the world-readable Nix store, so secret-bearing
        settings (api_key, token, …) must be references: op://… (see secretFiles), file:/path or
        env:NAME; an assertion refuses literal values. `db` defaults to ''${dataDir}/panther.db.
        Keys panther does not know make it refuse to start.
      '';
    };

    dataDir = mkOption {
      type = types.str;
      default = "/var/lib/panther";
      description = "Where the knowledge base lives; the only place the service may write.";
    };

    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1:7777";
      example = "100.101.102.103:7777";
      description = ''
        host:port for the HTTP API, web UI and /mcp (`panther serve --addr`). An address other
        machines can reach needs API tokens (see tokens).
      '';
    };

    tokens = mkOption {
      type = types.listOf (
        types.submodule {
          options = {
            name = mkOption {
              type = types.str;
              description = "Who holds the token; logs name it, never the token.";
            };
            token = mkOption {
              type = secretRef;
              example = "op://pantherOS/panther-api/default/token";
              description = "A reference to the token (op://, file:/path or env:NAME), never the token.";
            };
            scopes = mkOption {
              type = types.listOf (
                types.enum [
                  "read"
                  "write"
                  "admin"
                ]
              );
              default = [ "read" ];
              description = "What the token may do: read < write < admin.";
            };
          };
        }
      );
      default = [ ];
      description = "API bearer tokens, added to the config's [server] tokens.";
    };

    secretFiles = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        "op://pantherOS/zai-coding-plan-api/default/apiKey" = "/var/lib/opnix/secrets/zaiApiKey";
      };
      description = ''
        op:// references used in settings, each mapped to the file OpNix writes its value to
        (services.onepassword-secrets.secrets.<name>.path). Rendered into the config's
        [secrets] op_map table; see secretDelivery for how panther reads them.
      '';
    };

    secretDelivery = mkOption {
      type = types.enum [
        "credentials"
        "files"
      ];
      default = "credentials";
      description = ''
        How panther reads the secretFiles. "credentials": systemd loads each file (as root) with
        LoadCredential= and panther reads $CREDENTIALS_DIRECTORY, so OpNix's default
        root-owned 0600 files work, and so does dynamicUser. "files": panther opens the files
        itself, so OpNix must make them readable by services.panther.user.
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/panther.env";
      description = ''
        A file of NAME=value lines (outside the Nix store) for settings given as env:NAME, and
        for panther's PANTHER_* variables. A string, not a Nix path, so that it is never copied
        into the store.
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open listenAddress's port in the firewall (on the tailnet only, see tailscaleOnly).";
    };

    tailscaleOnly = mkOption {
      type = types.bool;
      default = true;
      description = "With openFirewall, open the port on the Tailscale interface only, not on every interface.";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [
        "--ssh-addr"
        "127.0.0.1:2222"
      ];
      description = "More arguments for `panther serve`.";
    };

    role = mkOption {
      type = types.enum [
        "workstation"
        "server"
      ];
      default = "server";
      description = "What kind of host this is; a tag on every metric (role:…).";
    };

    owner = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "alice";
      description = "Who the instance belongs to; a tag on every metric (owner:…) when set.";
    };

    user = mkOption {
      type = types.str;
      default = "panther";
      description = "The user the service runs as (created when it is \"panther\", unless dynamicUser).";
    };

    group = mkOption {
      type = types.str;
      default = "panther";
      description = "The service's group (created when it is \"panther\", unless dynamicUser).";
    };

    dynamicUser = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Run under a transient systemd user instead of a static one. Needs dataDir under /var/lib;
        secret files then reach panther only as credentials (secretDelivery = "credentials").
      '';
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      default = configFile;
      defaultText = lib.literalExpression "the generated config.toml";
      description = "The generated configuration file (also linked at ${pantherLib.configPath}).";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = pantherLib.assertions {
      inherit (cfg)
        settings
        dataDir
        listenAddress
        secretFiles
        secretDelivery
        environmentFile
        dynamicUser
        owner
        tokens
        ;
      final = finalSettings;
    };

    warnings =
      pantherLib.warnings { inherit (cfg) listenAddress openFirewall; }
      ++ lib.optional (opnixEnabled && unmatchedPaths != [ ])
        "services.panther.secretFiles: no OpNix secret is written to ${builtins.concatStringsSep ", " unmatchedPaths}; check services.onepassword-secrets.secrets.<name>.path."
      ++ lib.optional (opnixEnabled && cfg.secretDelivery == "files" && unreadableNames != [ ])
        "services.panther: OpNix secrets ${builtins.concatStringsSep ", " unreadableNames} are not owned by ${cfg.user}, who cannot read them with secretDelivery = \"files\"; set their owner or use secretDelivery = \"credentials\".";

    environment.etc."panther/config.toml".source = configFile;
    # For `sudo -u ${cfg.user} panther --config ${pantherLib.configPath} status` and friends.
    environment.systemPackages = [ cfg.package ];

    users.users = lib.mkIf (!cfg.dynamicUser && cfg.user == "panther") {
      panther = {
        isSystemUser = true;
        group = cfg.group;
        home = cfg.dataDir;
        description = "panther knowledge server";
      };
    };
    users.groups = lib.mkIf (!cfg.dynamicUser && cfg.group == "panther") { panther = { }; };

    systemd.tmpfiles.rules = lib.optional (
      pantherLib.stateDirectory cfg.dataDir == null
    ) "d ${cfg.dataDir} 0700 ${cfg.user} ${cfg.group} - -";

    systemd.services.panther = {
      description = "panther documentation knowledge server";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ] ++ lib.optional opnixEnabled "opnix-secrets.service";
      wants = lib.optional opnixEnabled "opnix-secrets.service";
      restartTriggers = [ configFile ] ++ opnixReferences;
      environment = pantherLib.environment { inherit (cfg) dataDir role owner; };
      serviceConfig = pantherLib.serviceConfig {
        execStart = pantherLib.execStart { inherit (cfg) package listenAddress extraArgs; };
        inherit (cfg)
          user
          group
          dynamicUser
          dataDir
          environmentFile
          ;
        loadCredentials = pantherLib.loadCredentials { inherit (cfg) secretFiles secretDelivery; };
      };
    };

    # The attribute names here must not depend on cfg: the module system needs them to find
    # where cfg itself is defined.
    networking.firewall = lib.mkIf (cfg.openFirewall && listen != null) {
      allowedTCPPorts = lib.mkIf (!cfg.tailscaleOnly) [ listen.port ];
      interfaces = lib.mkIf cfg.tailscaleOnly {
        ${config.services.tailscale.interfaceName or "tailscale0"}.allowedTCPPorts = [ listen.port ];
      };
    };
  };
}
