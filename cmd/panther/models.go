package main

import (
	"context"
	"fmt"
	"sync"

	"panther"
	"panther/llm"
)

// models builds model clients from the config file's [providers], one client per provider and model,
// shared by every agent of the process.
type models struct {
	cfg *fileConfig
	// resolve resolves a secret-bearing setting; isKey marks a secret even as a plain value.
	resolve func(value string, isKey bool) (string, error)
	// instrument, when set, wraps each client (with metrics).
	instrument func(provider string, m panther.Model) (panther.Model, error)
	// fallback is the model used when a definition names none: --model, $PANTHER_MODEL or the
	// config file's model key.
	fallback string

	mu      sync.Mutex
	clients map[string]panther.Model
}

func (a *app) models(modelFlag string) (*models, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	fallback := firstNonEmpty(modelFlag, a.getenv("PANTHER_MODEL"), cfg.Model)
	if fallback != "" {
		if _, _, err := cfg.splitModel(fallback); err != nil {
			return nil, panther.Invalidf("model %v", err)
		}
	}
	return &models{cfg: cfg, resolve: func(v string, isKey bool) (string, error) { return a.resolveSecret(context.Background(), v, isKey) }, fallback: fallback, clients: map[string]panther.Model{}}, nil
}

// configured reports whether any model can answer.
func (m *models) configured() bool { return m.fallback != "" }

// Resolve returns the client for "provider/model" ("" for the default) and the model name to send.
func (m *models) Resolve(name string) (panther.Model, string, error) {
	if name == "" {
		name = m.fallback
	}
	if name == "" {
		return nil, "", panther.Invalidf("no model is configured: %s", howToConfigure)
	}
	provider, model, err := m.cfg.splitModel(name)
	if err != nil {
		return nil, "", panther.Invalidf("model %v", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.clients[name]; ok {
		return c, model, nil
	}
	c, err := m.client(provider, model)
	if err != nil {
		return nil, "", err
	}
	if m.instrument != nil {
		if c, err = m.instrument(provider, c); err != nil {
			return nil, "", err
		}
	}
	m.clients[name] = c
	return c, model, nil
}

func (m *models) client(provider, model string) (panther.Model, error) {
	p := m.cfg.Providers[provider]
	key, err := m.secret(provider, "api_key", p.APIKey)
	if err != nil {
		return nil, err
	}
	base, err := m.secret(provider, "base_url", p.BaseURL)
	if err != nil {
		return nil, err
	}
	// The clients read 0 as their default and a negative number as none.
	retries := 0
	if p.Retries != nil {
		retries = *p.Retries
		if retries == 0 {
			retries = -1
		}
	}
	switch p.Wire {
	case "openai":
		opts := llm.OpenAIOptions{BaseURL: base, APIKey: key, Model: model, MaxTokens: p.MaxTokens, Timeout: p.Timeout, Retries: retries}
		c, err := llm.NewOpenAI(opts)
		if err != nil {
			return nil, fmt.Errorf("providers.%s: %w", provider, err)
		}
		return c, nil
	case "anthropic":
		opts := llm.AnthropicOptions{BaseURL: base, APIKey: key, Model: model, MaxTokens: p.MaxTokens, Timeout: p.Timeout, Retries: retries}
		c, err := llm.NewAnthropic(opts)
		if err != nil {
			return nil, fmt.Errorf("providers.%s: %w", provider, err)
		}
		return c, nil
	}
	return nil, panther.Invalidf("providers.%s.wire %q: want openai or anthropic", provider, p.Wire)
}

func (m *models) secret(provider, key, value string) (string, error) {
	if value == "" {
		return "", nil
	}
	v, err := m.resolve(value, key == "api_key")
	if err != nil {
		return "", fmt.Errorf("providers.%s.%s: %w", provider, key, err)
	}
	return v, nil
}
