# Example hosts, as services.panther values plus the rest of the host's services. nix-check.sh has
# panther load the configuration the module writes for each; the flake's checks evaluate them with
# the real NixOS module system.
{
  # Only keys today's panther knows (config.example.toml): models, embedder, agents, web.
  basic = {
    services.panther = {
      enable = true;
      role = "server";
      owner = "alice";
      settings = {
        model = "zai/glm-4.6";
        providers = {
          zai = {
            wire = "openai";
            base_url = "https://api.z.ai/api/coding/paas/v4";
            api_key = "env:ZAI_API_KEY";
          };
          minimax = {
            wire = "anthropic";
            base_url = "https://api.minimax.io/anthropic";
            api_key = "file:/run/secrets/minimax-api-key";
            max_tokens = 4096;
            timeout = "10m";
            retries = 4;
          };
          ollama = {
            wire = "openai";
            base_url = "http://localhost:11434/v1";
          };
        };
        embedder = {
          kind = "builtin";
          vector_weight = 0.1;
        };
        agents = {
          max_steps = 12;
          max_tokens = 200000;
          timeout = "5m";
          max_subagents = 4;
          max_depth = 1;
          dirs = [ "/etc/panther/agents" ];
        };
        web.allow = [ "100.64.0.0/10" ];
      };
      environmentFile = "/run/secrets/panther.env";
    };
  };

  # The owner's workstation: listening on the tailnet with API tokens, secrets from 1Password through
  # OpNix. Adds [server] tokens and [secrets] op_map to the file.
  tailnet = {
    services.panther = {
      enable = true;
      role = "workstation";
      owner = "alice";
      listenAddress = "100.64.0.7:7777";
      openFirewall = true;
      tokens = [
        {
          name = "laptop";
          token = "op://pantherOS/panther-api/default/token";
          scopes = [ "write" ];
        }
      ];
      secretFiles = {
        "op://pantherOS/minimax-coding-plan-api/default/apiKey" = "/var/lib/opnix/secrets/minimaxApiKey";
        "op://pantherOS/panther-api/default/token" = "/var/lib/opnix/secrets/pantherApiToken";
      };
      settings = {
        model = "minimax/MiniMax-M2";
        providers.minimax = {
          wire = "anthropic";
          base_url = "https://api.minimax.io/anthropic";
          api_key = "op://pantherOS/minimax-coding-plan-api/default/apiKey";
        };
        web.allow = [ "100.64.0.0/10" ];
      };
    };
    services.onepassword-secrets = {
      enable = true;
      secretPaths = {
        minimaxApiKey = "/var/lib/opnix/secrets/minimaxApiKey";
        pantherApiToken = "/var/lib/opnix/secrets/pantherApiToken";
      };
      secrets = {
        minimaxApiKey.reference = "op://pantherOS/minimax-coding-plan-api/default/apiKey";
        pantherApiToken.reference = "op://pantherOS/panther-api/default/token";
      };
    };
  };

  # Every option group of issue 7 on one host: secrets from OpNix as credentials, the API and SSH on
  # the tailnet through an embedded Tailscale node, a local PostgreSQL, a nightly crawl, Datadog.
  # The README's example host is this one.
  complete = {
    services.panther = {
      enable = true;
      role = "workstation";
      owner = "alice";
      tokens = [
        {
          name = "laptop";
          token = "op://pantherOS/panther-api/default/token";
          scopes = [ "write" ];
        }
      ];
      secrets.files = {
        "op://pantherOS/panther-api/default/token" = "/var/lib/opnix/secrets/pantherApiToken";
        "op://pantherOS/minimax-coding-plan-api/default/apiKey" = "/var/lib/opnix/secrets/minimaxApiKey";
        "op://pantherOS/tailscale-auth-key/default/authKey" = "/var/lib/opnix/secrets/tailscaleAuthKey";
      };
      serve = {
        address = "127.0.0.1:7777";
        ssh = {
          enable = true;
          address = "127.0.0.1:2222";
          authorizedKeysFile = "/etc/ssh/authorized_keys.d/alice";
        };
        tailscale = {
          enable = true;
          hostname = "panther";
          authKey = "op://pantherOS/tailscale-auth-key/default/authKey";
        };
      };
      database.createLocally = true;
      crawl.schedules = {
        "https://www.postgresql.org/docs/current/" = "0 3 * * 0";
        "https://go.dev/doc/" = "daily";
      };
      datadog = {
        enable = true;
        tags = [ "env:home" ];
      };
      settings = {
        model = "minimax/MiniMax-M2";
        providers.minimax = {
          wire = "anthropic";
          base_url = "https://api.minimax.io/anthropic";
          api_key = "op://pantherOS/minimax-coding-plan-api/default/apiKey";
        };
        embedder.kind = "builtin";
        server.max_body = 2097152;
        telemetry.log_format = "json";
      };
    };
    services.onepassword-secrets = {
      enable = true;
      secretPaths = {
        pantherApiToken = "/var/lib/opnix/secrets/pantherApiToken";
        minimaxApiKey = "/var/lib/opnix/secrets/minimaxApiKey";
        tailscaleAuthKey = "/var/lib/opnix/secrets/tailscaleAuthKey";
      };
      secrets = {
        pantherApiToken.reference = "op://pantherOS/panther-api/default/token";
        minimaxApiKey.reference = "op://pantherOS/minimax-coding-plan-api/default/apiKey";
        tailscaleAuthKey.reference = "op://pantherOS/tailscale-auth-key/default/authKey";
      };
    };
  };

  # An extra host running jobs against the shared database of another; no server of its own.
  worker = {
    services.panther = {
      owner = "alice";
      worker = {
        enable = true;
        database = "postgres://panther@kb.tailnet.example:5432/panther?sslmode=verify-full";
      };
      environmentFile = "/run/secrets/panther-worker.env"; # PGPASSWORD=…
      settings.embedder.kind = "builtin";
    };
  };
}
