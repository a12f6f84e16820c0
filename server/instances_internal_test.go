package server

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/brygga/brygga/server/account"
	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/pgstore/pgtest"
	"github.com/brygga/brygga/server/sqlitestore"
)

// openPostgresTwice opens two stores on one fresh PostgreSQL database: two
// servers' views of it.
func openPostgresTwice(t *testing.T) (*pgstore.Store, *pgstore.Store) {
	t.Helper()
	url := pgtest.URL(t)
	var out [2]*pgstore.Store
	for i := range out {
		s, err := pgstore.Open(context.Background(), url, pgstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out[0], out[1]
}

// TestLimiterContract: a limiter, in memory or in a shared store, refuses
// past its limit within the window, tells how long to wait, and forgets
// after the window or a reset.
func TestLimiterContract(t *testing.T) {
	limit := account.Limit{Scope: "test", Max: 3, Window: 15 * time.Minute}
	run := func(t *testing.T, l Limiter) {
		ctx := context.Background()
		start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
		for i := range 3 {
			if ok, err := l.Allowed(ctx, "anna", start); !ok || err != nil {
				t.Fatalf("attempt %d refused: %v", i+1, err)
			}
			if err := l.Fail(ctx, "anna", start.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := l.Allowed(ctx, "anna", start.Add(3*time.Minute)); ok || err != nil {
			t.Errorf("a fourth attempt within the window: allowed %v, %v", ok, err)
		}
		if ok, _ := l.Allowed(ctx, "bertil", start.Add(3*time.Minute)); !ok {
			t.Error("another name was refused")
		}
		if d, err := l.RetryAfter(ctx, "anna", start.Add(3*time.Minute)); d != 12*time.Minute || err != nil {
			t.Errorf("wait %v, %v; want 12m (until the first attempt leaves the window)", d, err)
		}
		if ok, _ := l.Allowed(ctx, "anna", start.Add(15*time.Minute)); !ok {
			t.Error("refused once the first attempt left the window")
		}
		if err := l.Reset(ctx, "anna"); err != nil {
			t.Fatal(err)
		}
		if d, _ := l.RetryAfter(ctx, "anna", start.Add(3*time.Minute)); d != 0 {
			t.Errorf("after a reset: wait %v", d)
		}
	}
	t.Run("memory", func(t *testing.T) {
		s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), sqlitestore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		l := newLimiter(s, limit)
		if _, ok := l.(localLimiter); !ok {
			t.Fatalf("a SQLite store's limiter is %T, want one in memory", l)
		}
		run(t, l)
	})
	t.Run("postgres", func(t *testing.T) {
		a, _ := openPostgresTwice(t)
		run(t, newLimiter(a, limit))
	})
}

// TestLimitsSharedByInstances: failed logins counted by one server lock
// the username out on another of the same database.
func TestLimitsSharedByInstances(t *testing.T) {
	a, b := openPostgresTwice(t)
	limit := account.Limit{Scope: "login.username", Max: 2, Window: 15 * time.Minute}
	la, lb := newLimiter(a, limit), newLimiter(b, limit)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, l := range []Limiter{la, lb} {
		if err := l.Fail(ctx, "name", now); err != nil {
			t.Fatal(err)
		}
	}
	for i, l := range []Limiter{la, lb} {
		if ok, err := l.Allowed(ctx, "name", now); ok || err != nil {
			t.Errorf("server %d allows a third attempt after one failure on each: %v, %v", i+1, ok, err)
		}
	}
}

// TestKeyRotatedOnOneInstance: a key rotated by one server is used by
// another for its next token, and a token signed with it is accepted by
// the other at once, though its keys were read less than keyReload ago.
func TestKeyRotatedOnOneInstance(t *testing.T) {
	a, b := openPostgresTwice(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	ka, err := loadKeys(ctx, a, now, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := loadKeys(ctx, b, now, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ka.signing != kb.signing {
		t.Fatalf("two servers started on one database sign with %s and %s", ka.signing, kb.signing)
	}
	claims := func(at time.Time) *Claims {
		return &Claims{RegisteredClaims: registered(at, 15*time.Minute, "user:x"), Role: RoleAdmin}
	}
	later := now.Add(2 * time.Second)
	kid, err := rotateKey(ctx, a, later)
	if err != nil {
		t.Fatal(err)
	}
	if err := ka.reload(ctx, later); err != nil {
		t.Fatal(err)
	}
	tok, err := ka.sign(ctx, claims(later.Add(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kb.parse(ctx, tok, later.Add(time.Second)); err != nil {
		t.Errorf("a token of the key rotated on the other server is refused: %v", err)
	}
	tok, err = kb.sign(ctx, claims(later.Add(2*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if kb.signing != kid {
		t.Errorf("the other server signs with %s, want the rotated key %s", kb.signing, kid)
	}
	if _, err := ka.parse(ctx, tok, later.Add(2*time.Second)); err != nil {
		t.Errorf("the other server's token is refused by the one that rotated: %v", err)
	}
}
