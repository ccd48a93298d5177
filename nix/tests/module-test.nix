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
]
