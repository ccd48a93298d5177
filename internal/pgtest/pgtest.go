// Package pgtest gives tests outside package postgres a PostgreSQL store of their own: an empty
// schema on the server named by PANTHER_TEST_POSTGRES (scripts/test.sh starts a throwaway cluster
// and sets it), dropped when the test ends. It is the isolation postgres/postgres_test.go uses.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	// EnvDSN names the test server's DSN.
	EnvDSN = "PANTHER_TEST_POSTGRES"
	// EnvRequire, set to 1, makes a missing server fail the tests instead of skipping them.
	EnvRequire = "PANTHER_TEST_REQUIRE_POSTGRES"
)

var admin struct {
	once sync.Once
	pool *pgxpool.Pool
	err  error
}

// Available reports whether a test server is configured.
func Available() bool { return os.Getenv(EnvDSN) != "" }

// ServerDSN returns the test server's DSN, or skips the test (fails it when the server is required).
func ServerDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s=1 but %s is not set: the PostgreSQL tests must not be skipped", EnvRequire, EnvDSN)
		}
		t.Skipf("%s is not set; skipping a PostgreSQL test (scripts/pg-cluster.sh start DIR PORT prints a DSN)", EnvDSN)
	}
	return dsn
}

// FreshDSN creates an empty schema for the test, dropped when the test ends, and returns a DSN
// whose search_path is that schema: the store creates every object in it.
func FreshDSN(t testing.TB) string {
	t.Helper()
	base := ServerDSN(t)
	admin.once.Do(func() {
		cfg, err := pgxpool.ParseConfig(base)
		if err != nil {
			admin.err = err
			return
		}
		// The pool outlives the test that made it; it is one or two idle connections per test binary.
		cfg.MaxConns = 2
		admin.pool, admin.err = pgxpool.NewWithConfig(context.Background(), cfg)
	})
	if admin.err != nil {
		t.Fatalf("connect to the test server: %v", admin.err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "panther_t_" + hex.EncodeToString(b[:])
	if _, err := admin.pool.Exec(t.Context(), "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Errorf("drop test schema %s: %v", name, err)
		}
	})
	if u, err := url.Parse(base); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", name)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return base + " search_path=" + name
}
