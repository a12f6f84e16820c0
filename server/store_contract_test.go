package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/server/account"
	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/pgstore/pgtest"
	"github.com/brygga/brygga/server/sqlitestore"
	"github.com/brygga/brygga/sync/replica"
)

// The contract suites: each store interface the server declares, run
// against every engine's adapter. A PostgreSQL engine is skipped, saying
// why, where no PostgreSQL server answers (see pgtest.URL).

// contractStore is what every adapter offers the suites below.
type contractStore interface {
	server.AccountStore
	server.CredentialStore
	server.AuditLog
	server.Health
	server.DeviceStore
	Close() error
}

// ticking returns a clock that reads contractNow and then a millisecond
// more at each reading.
func ticking() func() time.Time {
	var mu sync.Mutex
	now := contractNow
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Millisecond)
		return now
	}
}

// engines runs f against a fresh store of each engine, with a ticking
// clock.
func engines(t *testing.T, f func(t *testing.T, s contractStore)) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), sqlitestore.Config{Now: ticking()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		s, err := pgstore.Open(context.Background(), pgtest.URL(t), pgstore.Config{Now: ticking()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
}

var contractNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestAccountStoreContract(t *testing.T) {
	engines(t, func(t *testing.T, s contractStore) {
		ctx := context.Background()
		org, unit := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
		users := []*account.User{
			{ID: uuid.Must(uuid.NewV7()), Username: "märta", Role: account.RoleOutreach, OrgID: org, UnitID: unit},
			{ID: uuid.Must(uuid.NewV7()), Username: "admin", Role: account.RoleAdmin},
			{ID: uuid.Must(uuid.NewV7()), Username: "chef", Role: account.RoleManager, OrgID: org},
		}
		for i, u := range users {
			if err := s.AddUser(ctx, u, "hash-"+u.Username, contractNow.Add(time.Duration(i)*time.Second)); err != nil {
				t.Fatalf("add %s: %v", u.Username, err)
			}
		}
		err := s.AddUser(ctx, &account.User{ID: uuid.Must(uuid.NewV7()), Username: "chef", Role: account.RoleAdmin}, "x", contractNow)
		if !errors.Is(err, account.ErrUserExists) {
			t.Errorf("a taken username: %v, want ErrUserExists", err)
		}
		got, err := s.Users(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []*account.User{users[1], users[2], users[0]} // by username
		if len(got) != len(want) {
			t.Fatalf("%d users, want %d", len(got), len(want))
		}
		for i := range want {
			if *got[i] != *want[i] {
				t.Errorf("user %d: %+v, want %+v", i, got[i], want[i])
			}
		}
		u, hash, err := s.UserByName(ctx, "märta")
		if err != nil || *u != *users[0] || hash != "hash-märta" {
			t.Errorf("by name: %+v %q %v", u, hash, err)
		}
		if _, _, err := s.UserByName(ctx, "nobody"); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("an unknown name: %v, want ErrNotFound", err)
		}
	})
}

func TestCredentialStoreContract(t *testing.T) {
	t.Run("signing keys", func(t *testing.T) {
		engines(t, func(t *testing.T, s contractStore) {
			ctx := context.Background()
			keys, err := s.SigningKeys(ctx)
			if err != nil || len(keys) != 0 {
				t.Fatalf("a new store has keys %v, %v", keys, err)
			}
			first := account.SigningKey{KID: "k1", Seed: bytes.Repeat([]byte{1}, 32), CreatedAt: contractNow}
			second := account.SigningKey{KID: "k2", Seed: bytes.Repeat([]byte{2}, 32), CreatedAt: contractNow.Add(time.Hour)}
			for _, k := range []account.SigningKey{first, second} {
				if err := s.RotateKey(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			keys, err = s.SigningKeys(ctx)
			if err != nil || len(keys) != 2 {
				t.Fatalf("keys %v, %v", keys, err)
			}
			if keys[0].KID != "k1" || !keys[0].RetiredAt.Equal(second.CreatedAt) || !bytes.Equal(keys[0].Seed, first.Seed) {
				t.Errorf("the first key: %+v, want retired at the second's creation", keys[0])
			}
			if keys[1].KID != "k2" || !keys[1].RetiredAt.IsZero() || !keys[1].CreatedAt.Equal(second.CreatedAt) {
				t.Errorf("the second key: %+v, want the one that signs", keys[1])
			}
		})
	})
	t.Run("settings", func(t *testing.T) {
		engines(t, func(t *testing.T, s contractStore) {
			ctx := context.Background()
			if _, err := s.Setting(ctx, "a"); !errors.Is(err, account.ErrNotFound) {
				t.Errorf("an unset setting: %v, want ErrNotFound", err)
			}
			for _, v := range []string{"1", "2"} {
				if err := s.PutSetting(ctx, "a", v); err != nil {
					t.Fatal(err)
				}
			}
			if v, err := s.Setting(ctx, "a"); v != "2" || err != nil {
				t.Errorf("setting a = %q, %v; want 2", v, err)
			}
			if v, err := s.InitSetting(ctx, "b", "first"); v != "first" || err != nil {
				t.Errorf("init b: %q, %v", v, err)
			}
			if v, err := s.InitSetting(ctx, "b", "second"); v != "first" || err != nil {
				t.Errorf("init b again: %q, %v; want the first value kept", v, err)
			}
		})
	})
	t.Run("assertions", func(t *testing.T) {
		engines(t, func(t *testing.T, s contractStore) {
			ctx := context.Background()
			jti := sha256.Sum256([]byte("jti"))
			exp := contractNow.Add(time.Minute)
			for i, want := range []bool{true, false} {
				fresh, err := s.NoteAssertion(ctx, "device:1", jti[:], exp, contractNow)
				if err != nil || fresh != want {
					t.Errorf("presentation %d: fresh %v, %v; want %v", i+1, fresh, err, want)
				}
			}
			if fresh, err := s.NoteAssertion(ctx, "device:2", jti[:], exp, contractNow); !fresh || err != nil {
				t.Errorf("the same jti of another subject: fresh %v, %v", fresh, err)
			}
			// Once expired it is forgotten: an assertion that old is
			// refused for its expiry before it gets here.
			if fresh, err := s.NoteAssertion(ctx, "device:1", jti[:], exp.Add(time.Minute), exp); !fresh || err != nil {
				t.Errorf("after expiry: fresh %v, %v", fresh, err)
			}
			// Many at once: one is told it is the first.
			other := sha256.Sum256([]byte("other"))
			var firsts int
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					fresh, err := s.NoteAssertion(ctx, "device:3", other[:], exp, contractNow)
					if err != nil {
						t.Error(err)
					}
					if fresh {
						mu.Lock()
						firsts++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if firsts != 1 {
				t.Errorf("%d of 8 concurrent presentations were first, want 1", firsts)
			}
		})
	})
	t.Run("enrolment", func(t *testing.T) {
		engines(t, func(t *testing.T, s contractStore) {
			ctx := context.Background()
			unit := uuid.Must(uuid.NewV7())
			code := func(name string, expires time.Time) []byte {
				h := sha256.Sum256([]byte(name))
				if err := s.AddEnrolCode(ctx, &account.EnrolCode{Hash: h[:], UnitID: unit, CreatedBy: "user:x", CreatedAt: contractNow, ExpiresAt: expires}); err != nil {
					t.Fatal(err)
				}
				return h[:]
			}
			key := func() []byte {
				pub, _, _ := ed25519.GenerateKey(rand.Reader)
				return pub
			}
			enrol := func(hash, key []byte) (*account.Enrolled, error) {
				return s.Enrol(ctx, account.EnrolRequest{CodeHash: hash, Key: key, Audience: "https://b.example/v1/auth/token", Now: contractNow, NewID: uuid.Must(uuid.NewV7())})
			}
			unknown := sha256.Sum256([]byte("unknown"))
			if _, err := enrol(unknown[:], key()); !errors.Is(err, account.ErrEnrolCode) {
				t.Errorf("an unknown code: %v, want ErrEnrolCode", err)
			}
			if _, err := s.EnrolCode(ctx, unknown[:]); !errors.Is(err, account.ErrNotFound) {
				t.Errorf("reading an unknown code: %v, want ErrNotFound", err)
			}
			if _, err := enrol(code("expired", contractNow), key()); !errors.Is(err, account.ErrEnrolCode) {
				t.Errorf("an expired code: %v, want ErrEnrolCode", err)
			}

			c, k := code("valid", contractNow.Add(15*time.Minute)), key()
			e, err := enrol(c, k)
			if err != nil || e.Repeated || e.UnitID != unit || e.DeviceID == uuid.Nil {
				t.Fatalf("enrol: %+v, %v", e, err)
			}
			again, err := enrol(c, k)
			if err != nil || !again.Repeated || again.DeviceID != e.DeviceID {
				t.Errorf("the same code and key again: %+v, %v; want the same device, repeated", again, err)
			}
			if _, err := enrol(c, key()); !errors.Is(err, account.ErrEnrolCode) {
				t.Errorf("a used code with another key: %v, want ErrEnrolCode", err)
			}
			if _, err := enrol(code("second", contractNow.Add(15*time.Minute)), k); !errors.Is(err, account.ErrKeyRegistered) {
				t.Errorf("another code with a registered key: %v, want ErrKeyRegistered", err)
			}
			stored, err := s.EnrolCode(ctx, c)
			if err != nil || !bytes.Equal(stored.PublicKey, k) || stored.UnitID != unit || !stored.ExpiresAt.Equal(contractNow.Add(15*time.Minute)) {
				t.Errorf("the used code: %+v, %v", stored, err)
			}
			gotKey, aud, err := s.DeviceKey(ctx, e.DeviceID)
			if err != nil || !bytes.Equal(gotKey, k) || aud != "https://b.example/v1/auth/token" {
				t.Errorf("device key: %x %q %v", gotKey, aud, err)
			}
			if _, _, err := s.DeviceKey(ctx, uuid.Must(uuid.NewV7())); !errors.Is(err, account.ErrNotFound) {
				t.Errorf("the key of an unknown device: %v, want ErrNotFound", err)
			}

			// One code, many tries at once with one key: one device. The
			// tries start together, each on a connection of its own.
			c, k = code("raced", contractNow.Add(15*time.Minute)), key()
			var mu sync.Mutex
			devices := map[uuid.UUID]int{}
			news := 0
			var wg sync.WaitGroup
			var ready sync.WaitGroup
			start := make(chan struct{})
			for range 8 {
				ready.Add(1)
				wg.Go(func() {
					s.EnrolCode(ctx, c) // opens a connection before the start
					ready.Done()
					<-start
					e, err := enrol(c, k)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					devices[e.DeviceID]++
					if !e.Repeated {
						news++
					}
					mu.Unlock()
				})
			}
			ready.Wait()
			close(start)
			wg.Wait()
			if len(devices) != 1 || news != 1 {
				t.Errorf("8 concurrent enrolments of one code and key: devices %v, %d new; want one device, new once", devices, news)
			}
		})
	})
	t.Run("device names", func(t *testing.T) {
		engines(t, func(t *testing.T, s contractStore) {
			ctx := context.Background()
			a, b := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
			for _, step := range []struct {
				id   uuid.UUID
				name string
			}{{a, "Van 1"}, {b, "Van 2"}, {a, "Van 3"}, {b, ""}} {
				if err := s.SetDeviceName(ctx, step.id, step.name, contractNow); err != nil {
					t.Fatal(err)
				}
			}
			names, err := s.DeviceNames(ctx)
			if err != nil || len(names) != 1 || names[a] != "Van 3" {
				t.Errorf("names %v, %v; want only a, Van 3", names, err)
			}
		})
	})
}

func TestAuditLogContract(t *testing.T) {
	engines(t, func(t *testing.T, s contractStore) {
		ctx := context.Background()
		if got, err := s.AuditBefore(ctx, 1<<62, 10); err != nil || got == nil || len(got) != 0 {
			t.Errorf("an empty log: %v, %v; want an empty list", got, err)
		}
		var ids []int64
		for i := range 5 {
			e := &account.AuditEntry{At: contractNow.Add(time.Duration(i) * time.Second), Actor: "user:x", Action: "login", Outcome: "ok"}
			if i == 2 {
				e.Target, e.Rows, e.RequestID = "unit:y", 7, "r-1"
			}
			if err := s.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
			if len(ids) > 0 && e.ID <= ids[len(ids)-1] {
				t.Errorf("entry %d has id %d, not above %d", i, e.ID, ids[len(ids)-1])
			}
			ids = append(ids, e.ID)
		}
		page, err := s.AuditBefore(ctx, 1<<62, 3)
		if err != nil || len(page) != 3 || page[0].ID != ids[4] || page[2].ID != ids[2] {
			t.Fatalf("the newest 3: %+v, %v", page, err)
		}
		want := account.AuditEntry{ID: ids[2], At: contractNow.Add(2 * time.Second), Actor: "user:x", Action: "login", Target: "unit:y", Outcome: "ok", Rows: 7, RequestID: "r-1"}
		if page[2] != want {
			t.Errorf("entry: %+v, want %+v", page[2], want)
		}
		rest, err := s.AuditBefore(ctx, page[2].ID, 10)
		if err != nil || len(rest) != 2 || rest[0].ID != ids[1] || rest[1].ID != ids[0] {
			t.Errorf("the page before: %+v, %v", rest, err)
		}
	})
}

func TestHealthContract(t *testing.T) {
	engines(t, func(t *testing.T, s contractStore) {
		if err := s.Ping(context.Background()); err != nil {
			t.Errorf("ping: %v", err)
		}
		if n := s.OpenConnections(); n < 1 {
			t.Errorf("%d open connections after a ping", n)
		}
		if n := s.SizeBytes(); n <= 0 {
			t.Errorf("size %d bytes", n)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := s.Ping(context.Background()); err == nil {
			t.Error("a closed store answers a ping")
		}
	})
}

func TestDeviceStoreContract(t *testing.T) {
	engines(t, func(t *testing.T, s contractStore) {
		ctx := context.Background()
		unit := uuid.Must(uuid.NewV7())
		var ids []uuid.UUID
		for i := range 3 {
			h := sha256.Sum256([]byte{byte(i)})
			if err := s.AddEnrolCode(ctx, &account.EnrolCode{Hash: h[:], UnitID: unit, CreatedBy: "user:x", CreatedAt: contractNow, ExpiresAt: contractNow.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			pub, _, _ := ed25519.GenerateKey(rand.Reader)
			e, err := s.Enrol(ctx, account.EnrolRequest{CodeHash: h[:], Key: pub, Audience: "a", Now: contractNow.Add(time.Duration(i) * time.Second), NewID: uuid.Must(uuid.NewV7())})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.DeviceID)
		}
		unknown := uuid.Must(uuid.NewV7())
		d, err := s.LookupDevice(ctx, ids[0])
		if err != nil || d.ID != ids[0] || d.UnitID != unit || d.EnrolledAt.IsZero() || !d.RevokedAt.IsZero() || !d.RetiredAt.IsZero() || d.LastSeq != 0 || !d.LastPullAt.IsZero() {
			t.Errorf("a new device: %+v, %v", d, err)
		}
		if _, err := s.LookupDevice(ctx, unknown); !errors.Is(err, replica.ErrUnknownDevice) {
			t.Errorf("an unknown device: %v, want ErrUnknownDevice", err)
		}
		all, err := s.Devices(ctx)
		if err != nil || len(all) != 3 || all[0].ID != ids[2] || all[2].ID != ids[0] {
			t.Errorf("devices, newest first: %v, %v", all, err)
		}

		if err := s.NotePull(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		if d, _ := s.LookupDevice(ctx, ids[0]); d.LastPullAt.IsZero() {
			t.Error("a pull was not noted")
		}

		for i := range 2 {
			if err := s.RetireDevice(ctx, ids[1]); err != nil {
				t.Fatalf("retire %d: %v", i+1, err)
			}
		}
		if d, _ := s.LookupDevice(ctx, ids[1]); d.RetiredAt.IsZero() {
			t.Error("a retired device is not")
		}
		if err := s.RetireDevice(ctx, unknown); !errors.Is(err, replica.ErrUnknownDevice) {
			t.Errorf("retiring an unknown device: %v, want ErrUnknownDevice", err)
		}

		if err := s.RevokeDevice(ctx, ids[2]); err != nil {
			t.Fatal(err)
		}
		if d, _ := s.LookupDevice(ctx, ids[2]); d.RevokedAt.IsZero() {
			t.Error("a revoked device is not")
		}
		if err := s.RevokeDevice(ctx, ids[2]); !errors.Is(err, replica.ErrUnknownDevice) {
			t.Errorf("revoking again: %v, want ErrUnknownDevice", err)
		}
		if err := s.RevokeDevice(ctx, unknown); !errors.Is(err, replica.ErrUnknownDevice) {
			t.Errorf("revoking an unknown device: %v, want ErrUnknownDevice", err)
		}
		if err := s.RetireDevice(ctx, ids[2]); !errors.Is(err, replica.ErrDeviceRevoked) {
			t.Errorf("retiring a revoked device: %v, want ErrDeviceRevoked", err)
		}
	})
}
