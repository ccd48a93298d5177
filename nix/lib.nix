# Pure helpers for the panther package and NixOS module. They use builtins only (no nixpkgs) so that
# scripts/nix-check.sh can evaluate and test them where nixpkgs cannot be fetched; module.nix keeps the
# module-system glue and takes everything it decides from here.
let
  inherit (builtins)
    all
    any
    attrNames
    concatLists
    concatStringsSep
    elem
    elemAt
    filter
    fromJSON
    genList
    head
    isAttrs
    isList
    isString
    length
    mapAttrs
    match
    replaceStrings
    stringLength
    substring
    toJSON
    ;

  hasPrefix = p: s: substring 0 (stringLength p) s == p;
  upper = chars "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  lower = chars "abcdefghijklmnopqrstuvwxyz";
  toLower = replaceStrings upper lower;
  hasSuffix =
    x: s:
    let
      n = stringLength s;
      m = stringLength x;
    in
    n >= m && substring (n - m) m s == x;
  removePrefix = p: s: if hasPrefix p s then substring (stringLength p) (stringLength s) s else s;
  chars = s: genList (i: substring i 1 s) (stringLength s);
  mapAttrsToList = f: set: map (k: f k set.${k}) (attrNames set);
  unique = foldl (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];
  foldl = builtins.foldl';
  duplicates = xs: unique (filter (x: length (filter (y: y == x) xs) > 1) xs);
in
rec {
  inherit
    hasPrefix
    hasSuffix
    removePrefix
    mapAttrsToList
    ;

  # Where the module puts panther's configuration; the unit passes it with --config.
  configPath = "/etc/panther/config.toml";

  # ---- Versions -----------------------------------------------------------------------------------

  # The Go version go.mod asks for ("go 1.26.8"): the toolchain building the package must be at
  # least this, since buildGoModule sets GOTOOLCHAIN=local and cannot download a newer one.
  goDirective =
    goMod:
    let
      lines = filter isString (builtins.split "\n" goMod);
      found = filter (m: m != null) (map (match "go[[:space:]]+([0-9]+(\\.[0-9]+)*)[[:space:]]*") lines);
    in
    if found == [ ] then throw "go.mod has no go directive" else head (head found);

  # ---- The package's source ----------------------------------------------------------------------

  # Whether a file of the repository goes into the package's source: the Go module, without what
  # does not end up in the binary (Nix files, scripts, CI, benchmarks, build and profile outputs), so
  # that editing those does not rebuild panther. root is the repository's path as a string.
  sourceFilter =
    root: path: type:
    let
      rel = removePrefix "${root}/" (toString path);
      top = head (builtins.split "/" rel);
    in
    !(elem rel [
      "flake.nix"
      "flake.lock"
      "panther" # the binary `go build ./cmd/panther` leaves at the top
    ])
    && !(elem top [
      ".git"
      ".ci"
      "nix"
      "scripts"
      "bench"
    ])
    && !(hasPrefix "result" top && type == "symlink")
    && !(hasSuffix ".test" rel)
    && !(hasSuffix ".prof" rel);

  # ---- Secret references ----------------------------------------------------------------------------

  # How a setting names a secret without containing it (resolved by panther's secret package).
  referencePrefixes = [
    "op://"
    "file:"
    "env:"
  ];
  isReference = v: isString v && any (p: hasPrefix p v) referencePrefixes;

  # 1Password's secret reference: op://vault/item/field or op://vault/item/section/field. Query
  # parameters (?attribute=…) are left out: a file OpNix writes holds one field's value.
  isOPReference = v: isString v && match "op://[^/?]+/[^/?]+(/[^/?]+)?/[^/?]+" v != null;

  # The Nix store is world-readable: nothing secret may be there, not even a file a reference names.
  inStore = p: isString p && (hasPrefix "/nix/store/" p || hasPrefix "file:/nix/store/" p);

  isAbsolutePath = p: isString p && hasPrefix "/" p && match ".*(^|/)\\.\\.?(/.*|$)" p == null;

  # A key whose value is a secret: api_key, token, password, client_secret, … and the bare plurals
  # (tokens, api_keys) for lists of them, but not max_tokens. Compared without case, "_" or "-", so
  # apiKey and api-key count as well.
  secretKeySuffixes = [
    "apikey"
    "token"
    "password"
    "passwd"
    "secret"
    "privatekey"
    "accesskey"
    "secretkey"
    "authkey"
  ];
  isSecretKey =
    k:
    let
      n = toLower (replaceStrings [ "_" "-" ] [ "" "" ] k);
    in
    any (s: hasSuffix s n || n == "${s}s") secretKeySuffixes;

  # Values that are secrets whatever key holds them: the shapes of the keys and tokens this project's
  # owner uses (model providers, 1Password, Tailscale, GitHub, …), JWTs and PEM private keys.
  secretValuePatterns = [
    "sk-[A-Za-z0-9_-]{16,}" # OpenAI, Anthropic (sk-ant-…), DeepSeek and other model providers
    "ops_[A-Za-z0-9_-]{16,}" # 1Password service account token
    "tskey-[A-Za-z0-9-]{10,}" # Tailscale auth or API key
    "gh[pousr]_[A-Za-z0-9]{30,}" # GitHub tokens
    "github_pat_[A-Za-z0-9_]{30,}"
    "glpat-[A-Za-z0-9_-]{20,}" # GitLab
    "xox[abpr]-[A-Za-z0-9-]{10,}" # Slack
    "AKIA[0-9A-Z]{16}" # AWS access key id
    "hf_[A-Za-z0-9]{30,}" # Hugging Face
    "eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]*" # JWT
    ".*-----BEGIN [A-Z ]*PRIVATE KEY-----.*"
  ];
  looksLikeSecret = v: isString v && !(isReference v) && any (p: match p v != null) secretValuePatterns;

  # A dotted path for messages: providers.zai.api_key, server.tokens[0].token.
  showPath = concatStringsSep "";
  pathKey = k: if match "[A-Za-z0-9_-]+" k != null then k else toJSON k;

  # Walks settings and returns the paths (never the values) of the strings that break the rule
  # `bad key value`. The [secrets] op_map table is skipped: its keys are references and its values
  # paths, neither of them secret.
  walkStrings =
    bad: settings:
    let
      go =
        prefix: key: v:
        if isAttrs v then
          concatLists (
            map (
              k:
              if prefix == [ "secrets" ] && k == "op_map" then
                [ ]
              else
                go (prefix ++ [ (if prefix == [ ] then pathKey k else ".${pathKey k}") ]) k v.${k}
            ) (attrNames v)
          )
        else if isList v then
          concatLists (genList (i: go (prefix ++ [ "[${toString i}]" ]) key (elemAt v i)) (length v))
        else if isString v && bad key v then
          [ (showPath prefix) ]
        else
          [ ];
    in
    go [ ] "" settings;

  # Settings that would put a secret value into the Nix store: a secret-named key holding anything
  # but a reference, or a string shaped like a known kind of key wherever it is.
  literalSecretPaths = walkStrings (k: v: (isSecretKey k && !(isReference v)) || looksLikeSecret v);

  # References to files in the Nix store, which every local user can read.
  storeReferencePaths = walkStrings (_: inStore);

  # ---- OpNix and systemd credentials ------------------------------------------------------------

  # The systemd credential name a reference is loaded under: its segments joined with dots, as
  # panther's secret package derives it (spaces become "_"); other characters that a unit file or a
  # LoadCredential= line would read specially become "_" too.
  credentialName =
    ref:
    let
      joined = replaceStrings [ "/" ] [ "." ] (removePrefix "op://" ref);
    in
    concatStringsSep "" (map (c: if match "[A-Za-z0-9._-]" c != null then c else "_") (chars joined));

  # The [secrets] op_map table: each op:// reference mapped to where panther reads its value. With
  # "credentials", systemd reads OpNix's file (as root, so OpNix's default root:root 0600 works, and
  # so does DynamicUser) and panther finds it in $CREDENTIALS_DIRECTORY under the mapped name; with
  # "files", panther reads the file itself and OpNix must give it to panther's user.
  opMap =
    { secretFiles, secretDelivery }:
    if secretDelivery == "credentials" then mapAttrs (ref: _: credentialName ref) secretFiles else secretFiles;

  loadCredentials =
    { secretFiles, secretDelivery }:
    if secretDelivery == "credentials" then
      mapAttrsToList (ref: path: "${credentialName ref}:${path}") secretFiles
    else
      [ ];

  # ---- Listening and the firewall -----------------------------------------------------------------

  # host:port as Go's net.Listen takes it; null when it is not one. The port must be fixed (not 0)
  # because the firewall opens it.
  parseListen =
    addr:
    let
      m = if isString addr then match "(\\[[0-9A-Fa-f:.]+]|[A-Za-z0-9.-]*):(0|[1-9][0-9]{0,4})" addr else null;
      port = if m == null then 0 else fromJSON (elemAt m 1);
    in
    if m == null || port < 1 || port > 65535 then
      null
    else
      {
        host = head m;
        inherit port;
      };

  isLoopbackHost =
    h: h == "localhost" || h == "[::1]" || match "127\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}" h != null;

  # ---- Settings ---------------------------------------------------------------------------------

  recursiveUpdate =
    a: b:
    a // mapAttrs (k: v: if isAttrs v && isAttrs (a.${k} or null) then recursiveUpdate a.${k} v else v) b;

  # The settings written to config.toml: the database in dataDir unless settings name one, then the
  # user's settings, then what the module's own options add ([secrets] op_map, [server] tokens).
  finalSettings =
    {
      settings,
      dataDir,
      secretFiles ? { },
      secretDelivery ? "credentials",
      tokens ? [ ],
      # What the module's other options add; the user's settings override every one of them.
      moduleSettings ? { },
    }:
    let
      base = recursiveUpdate {
        db = "${dataDir}/panther.db";
      } moduleSettings;
      secrets =
        if secretFiles == { } then
          { }
        else
          {
            secrets.op_map = opMap { inherit secretFiles secretDelivery; };
          };
      server =
        if tokens == [ ] then
          { }
        else
          {
            server.tokens =
              (settings.server.tokens or [ ])
              ++ map (t: {
                inherit (t) name token scopes;
              }) tokens;
          };
    in
    recursiveUpdate (recursiveUpdate (recursiveUpdate base settings) secrets) server;

  # ---- The systemd unit -------------------------------------------------------------------------

  # One ExecStart argument, quoted the way systemd reads it (as nixpkgs' utils.escapeSystemdExecArg
  # does): JSON string syntax, with % and $ doubled so systemd expands neither.
  escapeSystemdExecArg = arg: replaceStrings [ "%" "$" ] [ "%%" "$$" ] (toJSON (toString arg));
  escapeSystemdExecArgs = args: concatStringsSep " " (map escapeSystemdExecArg args);

  execStart =
    {
      package,
      listenAddress,
      extraArgs ? [ ],
      tailscale ? false,
    }:
    escapeSystemdExecArgs (
      [
        "${toString package}/bin/panther"
        "--config"
        configPath
        "serve"
        "--addr"
        listenAddress
      ]
      ++ (if tailscale then [ "--tailscale" ] else [ ])
      ++ extraArgs
    );

  # `panther worker` for hosts that only run jobs against a shared database. database null: the
  # config's db.
  workerExecStart =
    {
      package,
      database ? null,
    }:
    escapeSystemdExecArgs (
      [
        "${toString package}/bin/panther"
        "--config"
        configPath
      ]
      ++ (if database == null then [ ] else [ "--db" database ])
      ++ [ "worker" ]
    );

  crawlExecStart =
    { package, url }:
    escapeSystemdExecArgs [
      "${toString package}/bin/panther"
      "--config"
      configPath
      "crawl"
      url
      "--quiet"
    ];

  # ---- Module options rendered as settings --------------------------------------------------------

  # The DSN of the database createLocally makes: the unix socket, so PostgreSQL's default peer
  # authentication maps the service's user to the role of the same name and no password exists.
  localDatabaseURL = name: "postgres:///${name}?host=/run/postgresql";

  # A postgres:// URL carrying a password would land in the store and in `ps`; it must come from
  # $PGPASSWORD (environmentFile) or ~/.pgpass instead.
  dsnHasPassword = dsn: isString dsn && match "[A-Za-z]+://[^/@]*:[^/@]*@.*" dsn != null;

  moduleSettings =
    {
      dataDir,
      role,
      owner,
      database ? null,
      ssh ? null,
      tailscale ? null,
      datadog ? null,
    }:
    recursiveUpdate
      (
        recursiveUpdate
          {
            telemetry =
              {
                inherit role;
              }
              // (if owner == null || owner == "" then { } else { inherit owner; })
              // (
                if datadog == null || !datadog.enable then
                  { }
                else
                  {
                    statsd_addr = datadog.statsdAddress;
                  }
                  // (if datadog.tags == [ ] then { } else { inherit (datadog) tags; })
              );
          }
          (
            if database == null || !database.createLocally then
              { }
            else
              {
                db = localDatabaseURL database.name;
              }
          )
      )
      (
        recursiveUpdate
          (
            if ssh == null || !ssh.enable then
              { }
            else
              {
                ssh = {
                  addr = ssh.address;
                  host_key = "${dataDir}/ssh_host_ed25519_key";
                }
                // (if ssh.authorizedKeysFile == null then { } else { authorized_keys = ssh.authorizedKeysFile; });
              }
          )
          (
            if tailscale == null || !tailscale.enable then
              { }
            else
              {
                tailscale = {
                  inherit (tailscale) hostname;
                  state_dir = "${dataDir}/tailscale";
                }
                // (if tailscale.authKey == null then { } else { auth_key = tailscale.authKey; });
              }
          )
      );

  # ---- Crawl schedules -------------------------------------------------------------------------

  # A cron expression ("m h dom mon dow") as systemd's OnCalendar= reads it; anything that is not
  # five cron fields is taken to be an OnCalendar expression already ("daily", "Mon *-*-* 03:00").
  # Supported per field: *, numbers, lists (a,b), ranges (a-b) and steps (*/n, a/n).
  cronToOnCalendar =
    expr:
    let
      fields = filter (f: isString f && f != "") (builtins.split "[[:space:]]+" expr);
      cronField = f: match "[0-9*/,-]+" f != null;
      isCron = length fields == 5 && all cronField fields;
      bad = what: throw "crawl schedule ${toJSON expr}: ${what}";
      part =
        first: f:
        let
          step = match "(.*)/([0-9]+)" f;
        in
        if step != null then
          (if head step == "*" then toString first else if match "[0-9]+" (head step) != null then head step else bad "a step needs * or a number before /")
          + "/${elemAt step 1}"
        else
          replaceStrings [ "-" ] [ ".." ] f;
      days = [ "Sun" "Mon" "Tue" "Wed" "Thu" "Fri" "Sat" "Sun" ];
      dayName =
        d:
        let
          n = fromJSON d;
        in
        if match "[0-7]" d == null then bad "day of week ${d} is not 0-7" else elemAt days n;
      dow =
        f:
        if f == "*" then
          ""
        else if match ".*/.*" f != null then
          bad "steps in the day of week are not supported"
        else
          concatStringsSep "," (
            map (
              item:
              let
                r = match "([0-9])-([0-9])" item;
              in
              if r != null then "${dayName (head r)}..${dayName (elemAt r 1)}" else dayName item
            ) (filter isString (builtins.split "," f))
          )
          + " ";
      m = elemAt fields 0;
      h = elemAt fields 1;
      dom = elemAt fields 2;
      mon = elemAt fields 3;
    in
    if !isCron then
      expr
    else
      "${dow (elemAt fields 4)}*-${part 1 mon}-${part 1 dom} ${part 0 h}:${part 0 m}:00";

  # The unit name for a schedule: readable (the URL's host and path) and unique (a hash of it).
  crawlUnitName =
    url:
    let
      bare = removePrefix "https://" (removePrefix "http://" url);
      safe = concatStringsSep "" (map (c: if match "[A-Za-z0-9]" c != null then toLower c else "-") (chars bare));
      short = substring 0 40 safe;
    in
    "panther-crawl-${short}-${substring 0 8 (builtins.hashString "sha256" url)}";

  # A data directory under /var/lib is a systemd StateDirectory (created with the right owner, and
  # required by DynamicUser); anywhere else tmpfiles creates it.
  stateDirectory = dataDir: if hasPrefix "/var/lib/" dataDir then removePrefix "/var/lib/" dataDir else null;

  # Tags every metric carries, in the form Datadog's libraries read from DD_TAGS.
  metricTags =
    { role, owner }: [ "role:${role}" ] ++ (if owner == null || owner == "" then [ ] else [ "owner:${owner}" ]);

  environment =
    {
      dataDir,
      role,
      owner,
    }:
    {
      # panther's defaults (agent definitions, caches) live under $HOME: keep them in dataDir.
      HOME = dataDir;
      DD_SERVICE = "panther";
      DD_TAGS = concatStringsSep "," (metricTags { inherit role owner; });
    };

  serviceConfig =
    {
      execStart,
      user,
      group,
      dynamicUser,
      dataDir,
      environmentFile ? null,
      loadCredentials ? [ ],
      # tsnet watches routes and interfaces over netlink.
      netlink ? false,
    }:
    let
      stateDir = stateDirectory dataDir;
    in
    {
      Type = "simple";
      ExecStart = execStart;
      Restart = "on-failure";
      RestartSec = 5;
      User = user;
      Group = group;
      DynamicUser = dynamicUser;
      WorkingDirectory = dataDir;
      UMask = "0077";

      # Nothing is writable but the data directory (and PrivateTmp's /tmp).
      ProtectSystem = "strict";
      ReadWritePaths = if dynamicUser then [ ] else [ dataDir ];
      ProtectHome = true;
      PrivateTmp = true;
      PrivateDevices = true;
      DevicePolicy = "closed";
      ProtectClock = true;
      ProtectControlGroups = true;
      ProtectHostname = true;
      ProtectKernelLogs = true;
      ProtectKernelModules = true;
      ProtectKernelTunables = true;
      ProtectProc = "invisible";
      ProcSubset = "pid";
      RemoveIPC = true;

      NoNewPrivileges = true;
      CapabilityBoundingSet = "";
      AmbientCapabilities = "";
      RestrictSUIDSGID = true;
      LockPersonality = true;
      RestrictRealtime = true;
      RestrictNamespaces = true;
      # Go neither writes nor executes generated code, so W^X costs nothing; the pure-Go SQLite does
      # not either.
      MemoryDenyWriteExecute = true;
      SystemCallArchitectures = "native";
      SystemCallFilter = [
        "@system-service"
        "~@privileged"
      ];
      # A refused call is an error Go reports, not a SIGSYS that kills the server mid-write.
      SystemCallErrorNumber = "EPERM";
      # IP for the API, crawls and model providers; unix sockets for a DogStatsD socket.
      RestrictAddressFamilies = [
        "AF_INET"
        "AF_INET6"
        "AF_UNIX"
      ]
      ++ (if netlink then [ "AF_NETLINK" ] else [ ]);
    }
    // (
      if stateDir == null then
        { }
      else
        {
          StateDirectory = stateDir;
          StateDirectoryMode = "0700";
        }
    )
    // (if environmentFile == null then { } else { EnvironmentFile = environmentFile; })
    // (if loadCredentials == [ ] then { } else { LoadCredential = loadCredentials; });

  # ---- Checks -----------------------------------------------------------------------------------

  # What the module refuses, as NixOS assertions. Messages name settings, never their values.
  assertions =
    {
      settings,
      final,
      dataDir,
      listenAddress,
      secretFiles,
      secretDelivery,
      environmentFile,
      dynamicUser,
      owner,
      tokens,
    }:
    let
      literal = literalSecretPaths final;
      stored = storeReferencePaths final;
      badRefs = filter (r: !(isOPReference r)) (attrNames secretFiles);
      badPaths = filter (r: !(isAbsolutePath secretFiles.${r}) || inStore secretFiles.${r}) (attrNames secretFiles);
      credNames = map credentialName (attrNames secretFiles);
      clashes = duplicates credNames;
      listen = parseListen listenAddress;
      allTokens = final.server.tokens or [ ];
    in
    [
      {
        assertion = literal == [ ];
        message = "services.panther.settings: ${concatStringsSep ", " literal} would put a secret into the world-readable Nix store; give a reference instead: op://vault/item/field (mapped by services.panther.secretFiles), file:/run/secrets/NAME, or env:NAME (set by services.panther.environmentFile).";
      }
      {
        assertion = stored == [ ];
        message = "services.panther.settings: ${concatStringsSep ", " stored} refer to files in the Nix store, which every local user can read; keep secret files outside it (OpNix writes them under /run or /var/lib/opnix).";
      }
      {
        assertion = badRefs == [ ];
        message = "services.panther.secretFiles: ${concatStringsSep ", " badRefs} are not 1Password references (op://vault/item/field or op://vault/item/section/field).";
      }
      {
        assertion = badPaths == [ ];
        message = "services.panther.secretFiles: the files for ${concatStringsSep ", " badPaths} must be absolute paths outside the Nix store (the paths OpNix writes).";
      }
      {
        assertion = clashes == [ ];
        message = "services.panther.secretFiles: several references map to the credential name(s) ${concatStringsSep ", " clashes}; rename an item or use secretDelivery = \"files\".";
      }
      {
        assertion = elem secretDelivery [
          "credentials"
          "files"
        ];
        message = "services.panther.secretDelivery must be \"credentials\" or \"files\".";
      }
      {
        assertion = environmentFile == null || (isAbsolutePath environmentFile && !(inStore environmentFile));
        message = "services.panther.environmentFile must be an absolute path outside the Nix store (it holds secrets).";
      }
      {
        assertion = listen != null;
        message = "services.panther.listenAddress ${toJSON listenAddress} is not host:port with a fixed port (e.g. 127.0.0.1:7777, [::1]:7777, 100.64.0.1:7777).";
      }
      {
        assertion = listen == null || isLoopbackHost listen.host || allTokens != [ ];
        message = "services.panther.listenAddress ${toJSON listenAddress} is reachable from other machines but no API token is configured, and panther serve refuses to open an unauthenticated API there; add services.panther.tokens (a reference per token) or listen on 127.0.0.1.";
      }
      {
        assertion = !(settings ? server && settings.server ? addr);
        message = "services.panther.settings.server.addr: set services.panther.listenAddress instead (the unit passes it as serve --addr, which would override the file).";
      }
      {
        assertion = isAbsolutePath dataDir && !(inStore dataDir);
        message = "services.panther.dataDir must be an absolute path outside the Nix store.";
      }
      {
        assertion = !dynamicUser || stateDirectory dataDir != null;
        message = "services.panther.dynamicUser needs dataDir under /var/lib (a StateDirectory), not ${dataDir}.";
      }
      {
        assertion = !(dynamicUser && secretDelivery == "files" && secretFiles != { });
        message = "services.panther.dynamicUser: a transient user cannot own OpNix's files; use secretDelivery = \"credentials\".";
      }
      {
        assertion = owner == null || match "[A-Za-z0-9_./-]*" owner != null;
        message = "services.panther.owner may hold letters, digits and _ . / - only (it becomes a metric tag).";
      }
      {
        assertion = all (t: t.scopes != [ ]) tokens;
        message = "services.panther.tokens: every token needs at least one scope (read, write or admin).";
      }
    ];

  # What the module's own options need beyond their types (module.nix adds them to the assertions).
  optionAssertions =
    { ssh, tailscale }:
    [
      {
        # panther refuses an [ssh] table without authorized_keys rather than guess whose keys.
        assertion = !ssh.enable || ssh.authorizedKeysFile != null;
        message = "services.panther.serve.ssh.authorizedKeysFile must name the public keys allowed in (panther admits no one without them).";
      }
      {
        assertion = !tailscale.enable || match "[A-Za-z0-9-]+" tailscale.hostname != null;
        message = "services.panther.serve.tailscale.hostname may hold letters, digits and - only (it is the node's DNS name).";
      }
    ];

  # Assertions that fail, as their messages: what nixos-rebuild would print.
  failedAssertions = as: map (a: a.message) (filter (a: !a.assertion) as);

  warnings =
    {
      listenAddress,
      openFirewall,
    }:
    let
      listen = parseListen listenAddress;
    in
    if openFirewall && listen != null && isLoopbackHost listen.host then
      [
        "services.panther.openFirewall opens port ${toString listen.port}, but panther listens on ${listenAddress} only: set listenAddress to a non-loopback address or leave the firewall closed."
      ]
    else
      [ ];
}
