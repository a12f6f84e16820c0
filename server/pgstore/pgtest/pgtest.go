// Package pgtest gives tests a fresh PostgreSQL database of their own.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultServer is the PostgreSQL server tests use unless BRYGGA_POSTGRES
// names another: the local one, user postgres, trust authentication.
const DefaultServer = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Server returns the URL of the PostgreSQL server tests use: the
// environment's BRYGGA_POSTGRES, else DefaultServer.
func Server() string {
	if u := os.Getenv("BRYGGA_POSTGRES"); u != "" {
		return u
	}
	return DefaultServer
}

// URL creates an empty database with a random name on Server and returns
// its URL; the database is dropped when the test ends. If no server
// answers, the test is skipped with the reason, or, with
// BRYGGA_POSTGRES_REQUIRED=1 in the environment, it fails.
func URL(tb testing.TB) string {
	tb.Helper()
	admin := Server()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("BRYGGA_POSTGRES_REQUIRED") == "1" {
			tb.Fatalf("PostgreSQL at %s does not answer: %v", Redacted(admin), err)
		}
		tb.Skipf("skipped: no PostgreSQL answers at %s (%v): the tests on PostgreSQL are skipped; set BRYGGA_POSTGRES to a server's URL, or run .ci/run, to run them", Redacted(admin), err)
	}
	defer conn.Close(context.Background())
	b := make([]byte, 8)
	rand.Read(b)
	name := "brygga_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("BRYGGA_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Redacted is the URL u without its password, for messages.
func Redacted(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the configured URL"
	}
	return p.Redacted()
}
