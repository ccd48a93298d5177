# Tests of ../module.nix evaluated against ./stub.nix (a stand-in for nixpkgs, see there): the
# options' defaults and types, and the NixOS configuration the module produces for a few hosts.
let
  h = import ./harness.nix;
  s = import ./stub.nix;
  inherit (h) case fails;

  eval = s.evalModule;

  off = eval { values.enable = false; };
  plain = eval { values.enable = true; };
  unit = plain.config.systemd.services.panther;

  opnixServices = {
    onepassword-secrets = {
      enable = true;
      secretPaths = {
        zaiApiKey = "/var/lib/opnix/secrets/zaiApiKey";
        other = "/var/lib/opnix/secrets/other";
      };
      secrets = {
        zaiApiKey = {
          reference = "op://pantherOS/zai-coding-plan-api/default/apiKey";
          owner = "root";
        };
        other.reference = "op://pantherOS/other/default/password";
      };
    };
  };

  full = eval {
    values = {
      enable = true;
      listenAddress = "100.64.0.7:7777";
      openFirewall = true;
      role = "workstation";
      owner = "alice";
      environmentFile = "/run/secrets/panther.env";
      extraArgs = [
        "--ssh-addr"
        "127.0.0.1:2222"
      ];
      tokens = [
        {
          name = "laptop";
          token = "op://pantherOS/panther-api/default/token";
        }
      ];
      secretFiles = {
        "op://pantherOS/zai-coding-plan-api/default/apiKey" = "/var/lib/opnix/secrets/zaiApiKey";
        "op://pantherOS/panther-api/default/token" = "/run/secrets/panther-token";
      };
      settings = {
        model = "zai/glm-4.6";
        providers.zai = {
          wire = "openai";
          base_url = "https://api.z.ai/api/coding/paas/v4";
          api_key = "op://pantherOS/zai-coding-plan-api/default/apiKey";
        };
      };
    };
    services = opnixServices;
  };
  fullUnit = full.config.systemd.services.panther;

  everywhere = eval {
    values = {
      enable = true;
      listenAddress = "127.0.0.1:7777";
      openFirewall = true;
      tailscaleOnly = false;
      secretDelivery = "files";
      secretFiles."op://pantherOS/zai-coding-plan-api/default/apiKey" = "/var/lib/opnix/secrets/zaiApiKey";
    };
    services = opnixServices;
  };

  dynamic = eval {
    values = {
      enable = true;
      dynamicUser = true;
      secretFiles."op://pantherOS/zai-coding-plan-api/default/apiKey" = "/var/lib/opnix/secrets/zaiApiKey";
    };
  };

  elsewhere = eval {
    values = {
      enable = true;
      dataDir = "/srv/panther";
      user = "kb";
      group = "kb";
    };
  };

  literal = eval {
    values = {
      enable = true;
      settings.providers.zai = {
        wire = "openai";
        base_url = "https://x.example/v1";
        api_key = "sk-ant-api03-AAAABBBBCCCCDDDDEEEEFFFF";
      };
    };
  };
  failedOf = r: map (a: a.message) (builtins.filter (a: !a.assertion) r.config.assertions);

  # The option set of issue 7: secrets, serve.{address,ssh,tailscale}, database, crawl, datadog.
  overridable = s.fakeDrv "panther-0-unstable" // {
    override = args: s.fakeDrv "panther-${builtins.concatStringsSep "-" args.tags}";
  };
  issue = eval {
    values = {
      enable = true;
      package = overridable;
      owner = "alice";
      tokens = [
        {
          name = "laptop";
          token = "op://pantherOS/panther-api/default/token";
        }
      ];
      secrets.files."op://pantherOS/panther-api/default/token" = "/var/lib/opnix/secrets/pantherApiToken";
      serve = {
        address = "100.64.0.7:7777";
        ssh = {
          enable = true;
          address = "100.64.0.7:2222";
          authorizedKeysFile = "/etc/ssh/authorized_keys.d/alice";
        };
        tailscale = {
          enable = true;
          hostname = "kb";
          authKey = "file:/run/secrets/ts-auth-key";
        };
      };
      database.createLocally = true;
      crawl.schedules."https://docs.example.org/manual/" = "30 2 * * 1-5";
      datadog = {
        enable = true;
        tags = [ "env:home" ];
      };
    };
    services.postgresql.package = s.fakeDrv "postgresql-17";
  };
  issueUnit = issue.config.systemd.services.panther;
  crawlName = "panther-crawl-docs-example-org-manual--3de45964";

  workerOnly = eval {
    values.worker = {
      enable = true;
      database = "postgres://panther@db.example:5432/panther?sslmode=verify-full";
    };
  };
in
h.run "module.nix (stub evaluation)" [
  # Defaults.
  (case "defaults" {
    inherit (plain.cfg)
      dataDir
      listenAddress
      openFirewall
      tailscaleOnly
      role
      owner
      user
      group
      dynamicUser
      secretDelivery
      environmentFile
      extraArgs
      tokens
      secretFiles
      settings
      ;
  } {
    dataDir = "/var/lib/panther";
    listenAddress = "127.0.0.1:7777";
    openFirewall = false;
    tailscaleOnly = true;
    role = "server";
    owner = null;
    user = "panther";
    group = "panther";
    dynamicUser = false;
    secretDelivery = "credentials";
    environmentFile = null;
    extraArgs = [ ];
    tokens = [ ];
    secretFiles = { };
    settings = { };
  })
  (case "disabled: no configuration at all" off.config { })

  # A plain host.
  (case "no failed assertions" (failedOf plain) [ ])
  (case "no warnings" plain.config.warnings [ ])
  (case "config file linked at /etc/panther/config.toml" plain.config.environment.etc."panther/config.toml".source.name
    "panther-config.toml"
  )
  (case "config file settings" plain.config.environment.etc."panther/config.toml".source.value {
    db = "/var/lib/panther/panther.db";
    telemetry.role = "server";
  })
  (case "configFile option is the linked file" plain.cfg.configFile.outPath
    plain.config.environment.etc."panther/config.toml".source.outPath
  )
  (case "ExecStart" unit.serviceConfig.ExecStart
    ''"/nix/store/00000000000000000000000000000000-panther-0-unstable/bin/panther" "--config" "/etc/panther/config.toml" "serve" "--addr" "127.0.0.1:7777"''
  )
  (case "unit basics" {
    inherit (unit)
      wantedBy
      after
      wants
      ;
    restartTriggers = map (d: d.outPath) unit.restartTriggers;
  } {
    wantedBy = [ "multi-user.target" ];
    after = [ "network.target" ];
    wants = [ ];
    restartTriggers = [ plain.cfg.configFile.outPath ];
  })
  (case "hardening" {
    inherit (unit.serviceConfig)
      User
      Group
      DynamicUser
      ProtectSystem
      ReadWritePaths
      StateDirectory
      NoNewPrivileges
      PrivateTmp
      RestrictAddressFamilies
      CapabilityBoundingSet
      MemoryDenyWriteExecute
      Restart
      ;
  } {
    User = "panther";
    Group = "panther";
    DynamicUser = false;
    ProtectSystem = "strict";
    ReadWritePaths = [ "/var/lib/panther" ];
    StateDirectory = "panther";
    NoNewPrivileges = true;
    PrivateTmp = true;
    RestrictAddressFamilies = [
      "AF_INET"
      "AF_INET6"
      "AF_UNIX"
    ];
    CapabilityBoundingSet = "";
    MemoryDenyWriteExecute = true;
    Restart = "on-failure";
  })
  (case "no credentials, no environment file" [
    (unit.serviceConfig ? LoadCredential)
    (unit.serviceConfig ? EnvironmentFile)
  ] [ false false ])
  (case "metric tags" unit.environment.DD_TAGS "role:server")
  (case "static user and group" {
    user = plain.config.users.users.panther.isSystemUser;
    group = plain.config.users.groups ? panther;
  } {
    user = true;
    group = true;
  })
  (case "package installed" (map (d: d.outPath) plain.config.environment.systemPackages) [ s.pkgs.panther.outPath ])
  (case "firewall untouched" (plain.config.networking or { }) { })
  (case "no tmpfiles under /var/lib" plain.config.systemd.tmpfiles.rules [ ])

  # Tailnet host with tokens, OpNix and secrets as credentials.
  (case "full: no failed assertions" (failedOf full) [ ])
  (case "full: settings" full.config.environment.etc."panther/config.toml".source.value {
    db = "/var/lib/panther/panther.db";
    telemetry = {
      role = "workstation";
      owner = "alice";
    };
    model = "zai/glm-4.6";
    providers.zai = {
      wire = "openai";
      base_url = "https://api.z.ai/api/coding/paas/v4";
      api_key = "op://pantherOS/zai-coding-plan-api/default/apiKey";
    };
    secrets.op_map = {
      "op://pantherOS/zai-coding-plan-api/default/apiKey" = "pantherOS.zai-coding-plan-api.default.apiKey";
      "op://pantherOS/panther-api/default/token" = "pantherOS.panther-api.default.token";
    };
    server.tokens = [
      {
        name = "laptop";
        token = "op://pantherOS/panther-api/default/token";
        scopes = [ "read" ];
      }
    ];
  })
  (case "full: credentials loaded from OpNix's files" fullUnit.serviceConfig.LoadCredential [
    "pantherOS.panther-api.default.token:/run/secrets/panther-token"
    "pantherOS.zai-coding-plan-api.default.apiKey:/var/lib/opnix/secrets/zaiApiKey"
  ])
  (case "full: after and wants OpNix" [
    fullUnit.after
    fullUnit.wants
  ] [
    [
      "network.target"
      "opnix-secrets.service"
    ]
    [ "opnix-secrets.service" ]
  ])
  (case "full: restarts when the mapped OpNix reference changes" (builtins.tail fullUnit.restartTriggers) [
    "op://pantherOS/zai-coding-plan-api/default/apiKey"
  ])
  (case "full: warns about a mapped file OpNix does not write" (
    map (h.contains "/run/secrets/panther-token") full.config.warnings
  ) [ true ])
  (case "full: ExecStart with extra args" fullUnit.serviceConfig.ExecStart
    ''"/nix/store/00000000000000000000000000000000-panther-0-unstable/bin/panther" "--config" "/etc/panther/config.toml" "serve" "--addr" "100.64.0.7:7777" "--ssh-addr" "127.0.0.1:2222"''
  )
  (case "full: environment file and tags" [
    fullUnit.serviceConfig.EnvironmentFile
    fullUnit.environment.DD_TAGS
  ] [ "/run/secrets/panther.env" "role:workstation,owner:alice" ])
  (case "full: port open on the tailnet only" full.config.networking.firewall {
    interfaces.tailscale0.allowedTCPPorts = [ 7777 ];
  })

  # Firewall on every interface, DynamicUser, secrets read as files.
  (case "everywhere: port open on every interface" everywhere.config.networking.firewall {
    allowedTCPPorts = [ 7777 ];
  })
  (case "everywhere: no failed assertions" (failedOf everywhere) [ ])
  (case "everywhere: warns that a loopback listener needs no open port, and that panther cannot read OpNix's root-owned file" (
    map (w: [
      (h.contains "openFirewall" w)
      (h.contains "zaiApiKey" w && h.contains "not owned by panther" w)
    ]) everywhere.config.warnings
  ) [ [ true false ] [ false true ] ])
  (case "everywhere: op_map holds paths, no credentials" [
    everywhere.config.environment.etc."panther/config.toml".source.value.secrets.op_map
    (everywhere.config.systemd.services.panther.serviceConfig ? LoadCredential)
  ] [ { "op://pantherOS/zai-coding-plan-api/default/apiKey" = "/var/lib/opnix/secrets/zaiApiKey"; } false ])
  (case "dynamic: no failed assertions" (failedOf dynamic) [ ])
  (case "dynamic: DynamicUser, no static user, secrets as credentials, no ReadWritePaths" [
    dynamic.config.systemd.services.panther.serviceConfig.DynamicUser
    (dynamic.config ? users && dynamic.config.users ? users)
    dynamic.config.systemd.services.panther.serviceConfig.LoadCredential
    dynamic.config.systemd.services.panther.serviceConfig.ReadWritePaths
    dynamic.config.systemd.services.panther.serviceConfig.StateDirectory
  ] [ true false [ "pantherOS.zai-coding-plan-api.default.apiKey:/var/lib/opnix/secrets/zaiApiKey" ] [ ] "panther" ])
  (case "dynamic with files: refused" (
    map (h.contains "transient user") (failedOf (eval {
      values = {
        enable = true;
        dynamicUser = true;
        secretDelivery = "files";
        secretFiles."op://pantherOS/zai-coding-plan-api/default/apiKey" = "/var/lib/opnix/secrets/zaiApiKey";
      };
    }))
  ) [ true ])

  # Data outside /var/lib, own user.
  (case "elsewhere: tmpfiles creates dataDir" elsewhere.config.systemd.tmpfiles.rules [
    "d /srv/panther 0700 kb kb - -"
  ])
  (case "elsewhere: no StateDirectory, no user created" [
    (elsewhere.config.systemd.services.panther.serviceConfig ? StateDirectory)
    elsewhere.config.systemd.services.panther.serviceConfig.ReadWritePaths
    (elsewhere.config ? users && elsewhere.config.users ? users)
  ] [ false [ "/srv/panther" ] false ])

  # What the options' types and the assertions refuse.
  (case "literal api_key: one failed assertion naming it" (
    map (h.contains "providers.zai.api_key") (failedOf literal)
  ) [ true ])
  (case "a token that is not a reference is refused by its type" (fails (eval {
    values = {
      enable = true;
      tokens = [
        {
          name = "x";
          token = "0123456789abcdef0123";
        }
      ];
    };
  }).cfg.tokens) true)
  (case "an unknown scope is refused" (fails (eval {
    values.tokens = [
      {
        name = "x";
        token = "env:X";
        scopes = [ "root" ];
      }
    ];
  }).cfg.tokens) true)
  (case "a role other than workstation or server is refused" (fails (eval { values.role = "laptop"; }).cfg.role)
    true
  )
  (case "a Nix path for environmentFile is refused (it would be copied to the store)" (fails (eval {
    values.environmentFile = ./harness.nix;
  }).cfg.environmentFile) true)
  (case "null in settings is refused (TOML has none)" (fails (eval { values.settings.db = null; }).cfg.settings) true)
  (case "configFile is read-only" (fails (eval { values.configFile = "/etc/x"; }).cfg.configFile) true)
  (case "an unknown option is refused" (fails (eval { values.listen = "x"; }).cfg) true)

  # Issue 7's option set.
  (case "old names are the new options' defaults" {
    inherit (full.cfg.serve) address;
    inherit (full.cfg.secrets) delivery;
    files = builtins.attrNames full.cfg.secrets.files;
  } {
    address = "100.64.0.7:7777";
    delivery = "credentials";
    files = [
      "op://pantherOS/panther-api/default/token"
      "op://pantherOS/zai-coding-plan-api/default/apiKey"
    ];
  })
  (case "issue: settings" (removeAttrs issue.config.environment.etc."panther/config.toml".source.value [ "secrets" "server" ]) {
    db = "postgres:///panther?host=/run/postgresql";
    ssh = {
      addr = "100.64.0.7:2222";
      authorized_keys = "/etc/ssh/authorized_keys.d/alice";
      host_key = "/var/lib/panther/ssh_host_ed25519_key";
    };
    tailscale = {
      hostname = "kb";
      state_dir = "/var/lib/panther/tailscale";
      auth_key = "file:/run/secrets/ts-auth-key";
    };
    telemetry = {
      role = "server";
      owner = "alice";
      statsd_addr = "127.0.0.1:8125";
      tags = [ "env:home" ];
    };
  })
  (case "issue: no assertion fails" (failedOf issue) [ ])
  (case "issue: tailscale selects the tsnet build and passes --tailscale" issueUnit.serviceConfig.ExecStart
    ''"/nix/store/00000000000000000000000000000000-panther-tsnet/bin/panther" "--config" "/etc/panther/config.toml" "serve" "--addr" "100.64.0.7:7777" "--tailscale"''
  )
  (case "issue: tsnet may use netlink" (builtins.elem "AF_NETLINK" issueUnit.serviceConfig.RestrictAddressFamilies) true)
  (case "no tailscale, no netlink" (builtins.elem "AF_NETLINK" unit.serviceConfig.RestrictAddressFamilies) false)
  (case "issue: credentials from secrets.files" issueUnit.serviceConfig.LoadCredential [
    "pantherOS.panther-api.default.token:/var/lib/opnix/secrets/pantherApiToken"
  ])
  (case "issue: the unit waits for PostgreSQL and the extension" {
    inherit (issueUnit) after requires;
  } {
    after = [ "network.target" "postgresql.service" "panther-postgresql-vector.service" ];
    requires = [ "postgresql.service" "panther-postgresql-vector.service" ];
  })
  (case "issue: a local PostgreSQL with pgvector, a database and its owner" {
    inherit (issue.config.services.postgresql) enable ensureDatabases ensureUsers;
    extensions = issue.config.services.postgresql.extensions { pgvector = "pgvector"; };
  } {
    enable = true;
    ensureDatabases = [ "panther" ];
    ensureUsers = [ { name = "panther"; ensureDBOwnership = true; } ];
    extensions = [ "pgvector" ];
  })
  (case "issue: the vector extension is created by postgres" (
    issue.config.systemd.services.panther-postgresql-vector.serviceConfig.ExecStart
  ) ''"/nix/store/00000000000000000000000000000000-postgresql-17/bin/psql" "--dbname=panther" "--set=ON_ERROR_STOP=1" "--command=CREATE EXTENSION IF NOT EXISTS vector"'')
  (case "issue: DD_TAGS carries the datadog tags" issueUnit.environment.DD_TAGS "role:server,owner:alice,env:home")
  (case "issue: a crawl timer per schedule" issue.config.systemd.timers.${crawlName}.timerConfig.OnCalendar
    "Mon..Fri *-*-* 2:30:00"
  )
  (case "issue: the crawl unit is a hardened oneshot" (
    let
      c = issue.config.systemd.services.${crawlName}.serviceConfig;
    in
    {
      inherit (c) Type ExecStart ProtectSystem User;
      restarts = c ? Restart;
    }
  ) {
    Type = "oneshot";
    ExecStart = ''"/nix/store/00000000000000000000000000000000-panther-tsnet/bin/panther" "--config" "/etc/panther/config.toml" "crawl" "https://docs.example.org/manual/" "--quiet"'';
    ProtectSystem = "strict";
    User = "panther";
    restarts = false;
  })
  (case "a local database named unlike the user is refused" (
    builtins.length (failedOf (eval {
      values = {
        enable = true;
        database = {
          createLocally = true;
          name = "kb";
        };
      };
      services.postgresql.package = s.fakeDrv "postgresql-17";
    }))
  ) 1)
  (case "worker only: a worker unit, the config, no server" {
    services = builtins.attrNames workerOnly.config.systemd.services;
    config = workerOnly.config.environment.etc ? "panther/config.toml";
    exec = workerOnly.config.systemd.services.panther-worker.serviceConfig.ExecStart;
    failed = failedOf workerOnly;
  } {
    services = [ "panther-worker" ];
    config = true;
    exec = ''"/nix/store/00000000000000000000000000000000-panther-0-unstable/bin/panther" "--config" "/etc/panther/config.toml" "--db" "postgres://panther@db.example:5432/panther?sslmode=verify-full" "worker"'';
    failed = [ ];
  })
  (case "ssh without authorized keys is refused" (
    builtins.length (failedOf (eval {
      values = {
        enable = true;
        serve.ssh.enable = true;
      };
    }))
  ) 1)
  (case "a worker DSN with a password is refused" (
    builtins.length (failedOf (eval {
      values.worker = {
        enable = true;
        database = "postgres://panther:hunter2@db.example/panther";
      };
    }))
  ) 1)
]
