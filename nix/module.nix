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

  # secrets.* and serve.address are the option set of issue 7; secretFiles, secretDelivery and
  # listenAddress, which came first, are their defaults, so hosts written for either keep working.
  secretFiles = cfg.secrets.files;
  secretDelivery = cfg.secrets.delivery;
  listenAddress = cfg.serve.address;

  # --tailscale needs the tsnet build tag; the package's own override adds it, so a host need not
  # know. A package without override (a plain derivation) is used as given.
  package =
    if cfg.serve.tailscale.enable && cfg.package ? override then
      cfg.package.override { tags = [ "tsnet" ]; }
    else
      cfg.package;

  moduleSettings = pantherLib.moduleSettings {
    inherit (cfg) dataDir role owner database datadog;
    inherit (cfg.serve) ssh tailscale;
  };

  finalSettings = pantherLib.finalSettings {
    inherit (cfg) settings dataDir tokens;
    inherit secretFiles secretDelivery moduleSettings;
  };
  configFile = settingsFormat.generate "panther-config.toml" finalSettings;

  listen = pantherLib.parseListen listenAddress;

  # A string that names a secret: a reference panther resolves, never the value.
  secretRef = types.strMatching "(op://|file:/|env:).+";

  # OpNix (services.onepassword-secrets) when the host imports and enables it: panther then starts
  # after it has written the secrets and restarts when the references it maps change.
  opnix = config.services.onepassword-secrets or null;
  opnixEnabled = opnix != null && (opnix.enable or false);
  opnixPaths = if opnixEnabled then opnix.secretPaths or { } else { };
  ourPaths = builtins.attrValues secretFiles;
  opnixNames = builtins.filter (n: builtins.elem opnixPaths.${n} ourPaths) (builtins.attrNames opnixPaths);
  opnixReferences = map (n: opnix.secrets.${n}.reference or n) opnixNames;
  unmatchedPaths = builtins.filter (p: !(builtins.elem p (builtins.attrValues opnixPaths))) ourPaths;
  unreadableNames = builtins.filter (n: (opnix.secrets.${n}.owner or "root") != cfg.user) opnixNames;

  afterOpnix = lib.optional opnixEnabled "opnix-secrets.service";
  localDb = cfg.database.createLocally;
  dbUnits = lib.optionals localDb [
    "postgresql.service"
    "panther-postgresql-vector.service"
  ];

  # What every panther unit (serve, worker, crawls) shares: user, data directory, secrets, hardening.
  unitServiceConfig =
    execStart:
    pantherLib.serviceConfig {
      inherit execStart;
      inherit (cfg)
        user
        group
        dynamicUser
        dataDir
        environmentFile
        ;
      loadCredentials = pantherLib.loadCredentials { inherit secretFiles secretDelivery; };
      netlink = cfg.serve.tailscale.enable;
    };
  unitEnvironment = pantherLib.environment { inherit (cfg) dataDir role owner; } // {
    DD_TAGS = builtins.concatStringsSep "," (
      pantherLib.metricTags { inherit (cfg) role owner; } ++ lib.optionals cfg.datadog.enable cfg.datadog.tags
    );
  };

  crawlUnits = pantherLib.mapAttrsToList (url: schedule: {
    name = pantherLib.crawlUnitName url;
    inherit url;
    onCalendar = pantherLib.cronToOnCalendar schedule;
  }) cfg.crawl.schedules;
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
        machines can reach needs API tokens (see tokens). The older name of serve.address, and
        its default.
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
        [secrets] op_map table; see secretDelivery for how panther reads them. The older name
        of secrets.files, and its default.
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

    secrets = {
      files = mkOption {
        type = types.attrsOf types.str;
        default = cfg.secretFiles;
        defaultText = lib.literalExpression "config.services.panther.secretFiles";
        example = {
          "op://pantherOS/zai-coding-plan-api/default/apiKey" = "/var/lib/opnix/secrets/zaiApiKey";
        };
        description = ''
          The op:// references the settings use, each mapped to the file OpNix writes its value to
          (config.services.onepassword-secrets.secretPaths.<name>). Rendered into [secrets] op_map;
          with delivery = "credentials" systemd hands each file to the unit with LoadCredential=.
          secretFiles is the older name of this option and its default.
        '';
      };
      delivery = mkOption {
        type = types.enum [
          "credentials"
          "files"
        ];
        default = cfg.secretDelivery;
        defaultText = lib.literalExpression "config.services.panther.secretDelivery";
        description = "How panther reads secrets.files; see secretDelivery, its older name and default.";
      };
    };

    serve = {
      address = mkOption {
        type = types.str;
        default = cfg.listenAddress;
        defaultText = lib.literalExpression "config.services.panther.listenAddress";
        example = "100.64.0.7:7777";
        description = "host:port of the HTTP API, web UI and /mcp (serve --addr); listenAddress is its older name and default.";
      };
      ssh = {
        enable = lib.mkEnableOption "the SSH terminal UI ([ssh] in the config)";
        address = mkOption {
          type = types.str;
          default = "127.0.0.1:2222";
          description = "host:port for the SSH terminal UI.";
        };
        authorizedKeysFile = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "/etc/ssh/authorized_keys.d/alice";
          description = "The public keys allowed in (the config's [ssh] authorized_keys); null: ~/.ssh/authorized_keys of the service's HOME (dataDir).";
        };
      };
      tailscale = {
        enable = lib.mkEnableOption "an embedded Tailscale node (serve --tailscale, a package built with the tsnet tag)";
        hostname = mkOption {
          type = types.str;
          default = "panther";
          description = "The node's name on the tailnet (http://<hostname>:<port>/).";
        };
        authKey = mkOption {
          type = types.nullOr secretRef;
          default = null;
          example = "op://pantherOS/tailscale-auth-key/default/authKey";
          description = "A reference to the auth key (op:// mapped by secrets.files, file:/path or env:NAME); null: join interactively once, the state in dataDir/tailscale keeps it.";
        };
      };
    };

    database = {
      createLocally = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Run a local PostgreSQL (services.postgresql) with the vector extension, a database and a
          role named after the service's user, reached over the unix socket with peer
          authentication (no password), and point db at it.
        '';
      };
      name = mkOption {
        type = types.str;
        default = "panther";
        description = "The local database's name; PostgreSQL's ensureDBOwnership needs it to equal services.panther.user.";
      };
    };

    crawl.schedules = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        "https://www.postgresql.org/docs/current/" = "0 3 * * 0";
      };
      description = ''
        Sources to recrawl on a schedule: URL → a cron expression ("m h dom mon dow") or a systemd
        OnCalendar= expression. Each becomes a timer running `panther crawl URL --quiet` as the
        service's user. (cron's "day of month OR day of week" becomes systemd's AND.)
      '';
    };

    datadog = {
      enable = lib.mkEnableOption "metrics to a DogStatsD agent ([telemetry] statsd_addr)";
      statsdAddress = mkOption {
        type = types.str;
        default = "127.0.0.1:8125";
        example = "unix:///var/run/datadog/dsd.socket";
        description = "Where the Datadog agent listens for DogStatsD.";
      };
      tags = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "env:home" ];
        description = "Tags on every metric, besides role:… and owner:… ([telemetry] tags).";
      };
    };

    worker = {
      enable = lib.mkEnableOption "a `panther worker` unit running jobs from a database other hosts share";
      database = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "postgres://panther@db.tailnet.example:5432/panther?sslmode=verify-full";
        description = ''
          The shared database (panther --db); null: the config's db. No password in it (it would
          be in the store and in ps): give PGPASSWORD in environmentFile, or use peer or
          certificate authentication.
        '';
      };
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      default = configFile;
      defaultText = lib.literalExpression "the generated config.toml";
      description = "The generated configuration file (also linked at ${pantherLib.configPath}).";
    };
  };

  config = lib.mkIf (cfg.enable || cfg.worker.enable) {
    assertions =
      pantherLib.assertions {
        inherit (cfg)
          settings
          dataDir
          environmentFile
          dynamicUser
          owner
          tokens
          ;
        inherit listenAddress secretFiles secretDelivery;
        final = finalSettings;
      }
      ++ pantherLib.optionAssertions { inherit (cfg.serve) ssh tailscale; }
      ++ [
        {
          assertion = !localDb || cfg.database.name == cfg.user;
          message = "services.panther.database.createLocally: database.name must equal services.panther.user (${cfg.user}), whose peer-authenticated role owns it.";
        }
        {
          assertion = !(pantherLib.dsnHasPassword cfg.worker.database);
          message = "services.panther.worker.database holds a password, which would be in the Nix store and in ps; give PGPASSWORD in services.panther.environmentFile instead.";
        }
        {
          assertion = !(pantherLib.dsnHasPassword (finalSettings.db or null));
          message = "services.panther.settings.db holds a password, which would be in the world-readable Nix store; give PGPASSWORD in services.panther.environmentFile instead.";
        }
      ];

    warnings =
      pantherLib.warnings {
        inherit listenAddress;
        inherit (cfg) openFirewall;
      }
      ++ lib.optional (opnixEnabled && unmatchedPaths != [ ])
        "services.panther.secrets.files: no OpNix secret is written to ${builtins.concatStringsSep ", " unmatchedPaths}; check services.onepassword-secrets.secrets.<name>.path."
      ++ lib.optional (opnixEnabled && secretDelivery == "files" && unreadableNames != [ ])
        "services.panther: OpNix secrets ${builtins.concatStringsSep ", " unreadableNames} are not owned by ${cfg.user}, who cannot read them with secretDelivery = \"files\"; set their owner or use secretDelivery = \"credentials\".";

    environment.etc."panther/config.toml".source = configFile;
    # For `sudo -u ${cfg.user} panther --config ${pantherLib.configPath} status` and friends.
    environment.systemPackages = [ package ];

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

    services.postgresql = lib.mkIf localDb {
      enable = true;
      extensions = ps: [ ps.pgvector ];
      ensureDatabases = [ cfg.database.name ];
      ensureUsers = [
        {
          name = cfg.user;
          ensureDBOwnership = true;
        }
      ];
    };

    systemd.services = lib.mkMerge [
      (lib.mkIf cfg.enable {
        panther = {
          description = "panther documentation knowledge server";
          wantedBy = [ "multi-user.target" ];
          after = [ "network.target" ] ++ afterOpnix ++ dbUnits;
          wants = afterOpnix;
          requires = dbUnits;
          restartTriggers = [ configFile ] ++ opnixReferences;
          environment = unitEnvironment;
          serviceConfig = unitServiceConfig (
            pantherLib.execStart {
              inherit package listenAddress;
              inherit (cfg) extraArgs;
              tailscale = cfg.serve.tailscale.enable;
            }
          );
        };
      })
      (lib.mkIf cfg.worker.enable {
        panther-worker = {
          description = "panther job worker";
          wantedBy = [ "multi-user.target" ];
          after = [ "network-online.target" ] ++ afterOpnix ++ dbUnits;
          wants = [ "network-online.target" ] ++ afterOpnix;
          requires = dbUnits;
          restartTriggers = [ configFile ] ++ opnixReferences;
          environment = unitEnvironment;
          serviceConfig = unitServiceConfig (
            pantherLib.workerExecStart {
              inherit package;
              inherit (cfg.worker) database;
            }
          );
        };
      })
      (lib.mkIf localDb {
        # pgvector's extension is created by the superuser: panther's role does not own the
        # server, and CREATE EXTENSION vector needs more than database ownership.
        panther-postgresql-vector = {
          description = "the vector extension in panther's database";
          after = [
            "postgresql.service"
            "postgresql-setup.service"
          ];
          requires = [ "postgresql.service" ];
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
            User = "postgres";
            ExecStart = pantherLib.escapeSystemdExecArgs [
              "${config.services.postgresql.package}/bin/psql"
              "--dbname=${cfg.database.name}"
              "--set=ON_ERROR_STOP=1"
              "--command=CREATE EXTENSION IF NOT EXISTS vector"
            ];
          };
        };
      })
      (builtins.listToAttrs (
        map (c: {
          inherit (c) name;
          value = {
            description = "panther: recrawl ${c.url}";
            after = [ "network-online.target" ] ++ afterOpnix ++ dbUnits;
            wants = [ "network-online.target" ] ++ afterOpnix;
            requires = dbUnits;
            environment = unitEnvironment;
            serviceConfig =
              removeAttrs (unitServiceConfig (
                pantherLib.crawlExecStart {
                  inherit package;
                  inherit (c) url;
                }
              )) [ "Restart" "RestartSec" ]
              // {
                Type = "oneshot";
              };
          };
        }) crawlUnits
      ))
    ];

    systemd.timers = builtins.listToAttrs (
      map (c: {
        inherit (c) name;
        value = {
          description = "panther: recrawl ${c.url} (${c.onCalendar})";
          wantedBy = [ "timers.target" ];
          timerConfig = {
            OnCalendar = c.onCalendar;
            # A schedule missed while the machine was off runs at the next boot.
            Persistent = true;
            RandomizedDelaySec = "5m";
          };
        };
      }) crawlUnits
    );

    # The attribute names here must not depend on cfg: the module system needs them to find
    # where cfg itself is defined.
    networking.firewall = lib.mkIf (cfg.enable && cfg.openFirewall && listen != null) {
      allowedTCPPorts = lib.mkIf (!cfg.tailscaleOnly) [ listen.port ];
      interfaces = lib.mkIf cfg.tailscaleOnly {
        ${config.services.tailscale.interfaceName or "tailscale0"}.allowedTCPPorts = [ listen.port ];
      };
    };
  };
}
