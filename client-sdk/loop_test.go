package brygga_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/sync/wire"
)

// fakeNow is a settable clock for the SDK.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeNow) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func TestLeaseAndRetention(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := &fakeNow{t: time.Now()}
	srv, err := server.Open(ctx, server.Config{DBPath: filepath.Join(dir, "s.db"), DeviceLease: 48 * time.Hour, RetentionDays: 30, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Shutdown(ctx)
	org, _ := srv.AddOrganisation(ctx, schema.OrgNGO, "Stiftelsen Bryggan", "23")
	unit, _ := srv.AddUnit(ctx, org.ID, "Lågtröskelmottagningen", "2380")
	staff, _ := srv.AddStaff(ctx, unit.ID, schema.RoleCounsellor)
	region, _ := srv.AddOrganisation(ctx, schema.OrgRegion, "Region Jämtland Härjedalen", "23")
	clinic, _ := srv.AddUnit(ctx, region.ID, "Beroendemottagningen", "2380", schema.ServiceAddictionClinic)
	code, _ := srv.NewEnrolCode(ctx, unit.ID, "test")

	c, err := brygga.Open(ctx, filepath.Join(dir, "t.db"), &brygga.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Enroll(ctx, "http://"+ln.Addr().String(), code.Code); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c.SetStaff(ctx, staff.ID)
	old := contact(schema.SettingFixedSite)
	old.OccurredAt = clock.Now().Add(-40 * 24 * time.Hour).UTC().Truncate(time.Millisecond)
	recent := contact(schema.SettingFixedSite)
	// Two referrals as old: one still open, one declined.
	open := &schema.Referral{Header: schema.Header{OccurredAt: old.OccurredAt}, Service: schema.ServiceAddictionClinic, ToUnitID: clinic.ID, Status: schema.StatusSent}
	done := &schema.Referral{Header: schema.Header{OccurredAt: old.OccurredAt}, Service: schema.ServiceAddictionClinic, ToUnitID: clinic.ID, Status: schema.StatusDeclined}
	for _, rec := range []schema.Record{old, recent, open, done} {
		if err := c.Add(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}

	// Three days without a sync: reads are refused, recording is not.
	clock.Add(72 * time.Hour)
	if _, err := c.Contacts(ctx, 10); !errors.Is(err, brygga.ErrLeaseExpired) {
		t.Fatalf("read after the lease: %v", err)
	}
	late := contact(schema.SettingStreet)
	if err := c.Add(ctx, late); err != nil {
		t.Fatalf("recording after the lease: %v", err)
	}
	// A sync renews the lease and purges what is older than 30 days.
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := c.Contacts(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("%d contacts on the device, want 2 (the 40-day-old one purged)", len(got))
	}
	// The open referral stays on the device however old; the declined one
	// leaves it. Both stay on the server.
	if _, err := c.Get(ctx, schema.KindReferral, open.ID); err != nil {
		t.Errorf("the open referral was purged: %v", err)
	}
	if _, err := c.Get(ctx, schema.KindReferral, done.ID); !errors.Is(err, brygga.ErrNotFound) {
		t.Errorf("the declined 40-day-old referral is still on the device: %v", err)
	}
	for _, id := range []uuid.UUID{open.ID, done.ID} {
		if _, err := srv.Record(ctx, schema.KindReferral, id); err != nil {
			t.Errorf("referral %s is not on the server: %v", id, err)
		}
	}
	if _, err := srv.Record(ctx, schema.KindContact, old.ID); err != nil {
		t.Errorf("the purged contact is not on the server: %v", err)
	}
}

func TestBackgroundLoop(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	c := r.deviceWith(r.url(), r.team, r.teamStaf, &brygga.Options{SyncDelay: 20 * time.Millisecond, SyncInterval: time.Hour})
	c.Start()
	defer c.Stop()
	rec := contact(schema.SettingMobileUnit)
	if err := c.Add(ctx, rec); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := r.srv.Record(ctx, schema.KindContact, rec.ID); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background loop did not sync the write")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Stop()
	c.Stop() // twice is harmless
}

// TestShortLivedTokens: with access tokens that live ten seconds the SDK
// gets a new one with a new assertion before every request, and syncs
// without a hitch.
func TestShortLivedTokens(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := server.Open(ctx, server.Config{DBPath: filepath.Join(dir, "s.db"), AccessTTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Shutdown(ctx)
	org, _ := srv.AddOrganisation(ctx, schema.OrgMunicipality, "Krokoms kommun", "23")
	unit, _ := srv.AddUnit(ctx, org.ID, "Teamet", "2309")
	staff, _ := srv.AddStaff(ctx, unit.ID, schema.RoleOutreachWorker)
	code, _ := srv.NewEnrolCode(ctx, unit.ID, "test")
	c, _ := brygga.Open(ctx, filepath.Join(dir, "t.db"), nil)
	defer c.Close()
	if err := c.Enroll(ctx, "http://"+ln.Addr().String(), code.Code); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c.SetStaff(ctx, staff.ID)
	for range 3 {
		if err := c.Add(ctx, contact(schema.SettingStreet)); err != nil {
			t.Fatal(err)
		}
		if err := c.Sync(ctx); err != nil {
			t.Fatalf("sync with short-lived tokens: %v", err)
		}
	}
	entries, err := srv.Audit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	pulls := 0
	for _, e := range entries {
		if e.Action == "token" {
			t.Errorf("a token request was refused: %+v", e)
		}
		if e.Action == "pull" && e.Outcome == "ok" {
			pulls++
		}
	}
	if pulls < 4 {
		t.Errorf("%d pulls audited, want at least 4", pulls)
	}
}

// TestLostTokenAnswers loses the server's answers to token requests on the
// way to the tablet, as a dropped connection in a stairwell does, three
// times in a row: the server has issued the tokens, the tablet never saw
// them. It makes a new assertion at its next sync, gets a token, and its
// records reach the server: nothing ends its access.
func TestLostTokenAnswers(t *testing.T) {
	ctx := context.Background()
	srv, base, now, unit := startClockedServer(t)
	cut, via := startCutter(t, base)
	staff, _ := srv.AddStaff(ctx, unit.ID, schema.RoleOutreachWorker)
	code, _ := srv.NewEnrolCode(ctx, unit.ID, "test")
	c, _ := brygga.Open(ctx, filepath.Join(t.TempDir(), "t.db"), &brygga.Options{Now: now.Now})
	defer c.Close()
	if err := c.Enroll(ctx, via, code.Code); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c.SetStaff(ctx, staff.ID)
	var ids []uuid.UUID
	for range 3 {
		rec := contact(schema.SettingStreet)
		if err := c.Add(ctx, rec); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}

	// The access token expires (on both clocks); three token answers are
	// lost after the server made them.
	now.Add(20 * time.Minute)
	cut.path.Store(wire.TokenPath)
	cut.cut.Store(3)
	for i := range 3 {
		if err := c.Sync(ctx); err == nil {
			t.Fatalf("sync %d succeeded although the token answer was lost", i+1)
		}
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("sync after three lost token answers: %v", err)
	}
	if st, _ := c.Status(ctx); st.Pending != 0 {
		t.Errorf("%d mutations still pending", st.Pending)
	}
	for _, id := range ids {
		if _, err := srv.Record(ctx, schema.KindContact, id); err != nil {
			t.Errorf("contact %s is not on the server: %v", id, err)
		}
	}
	entries, err := srv.Audit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Action == "token" {
			t.Errorf("a token request was refused: %+v", e)
		}
	}

	// The server's clock alone jumps, and the answer that says so is lost
	// twice: the tablet learns the server's time from the third.
	now.Add(0)
	c2, _ := brygga.Open(ctx, filepath.Join(t.TempDir(), "t2.db"), nil)
	defer c2.Close()
	code2, _ := srv.NewEnrolCode(ctx, unit.ID, "test")
	if err := c2.Enroll(ctx, via, code2.Code); err != nil {
		t.Fatal(err)
	}
	if err := c2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	now.Add(3 * time.Hour)
	cut.cut.Store(2)
	for i := range 2 {
		if err := c2.Sync(ctx); err == nil {
			t.Fatalf("sync %d succeeded although the token answer was lost", i+1)
		}
	}
	if err := c2.Sync(ctx); err != nil {
		t.Fatalf("sync after two lost answers of a server whose clock jumped: %v", err)
	}
}

// slowProxy passes requests to the server at once and holds each answer
// for delay before it sends it on: a device with a short timeout cancels
// its request after the server did the work.
func slowProxy(t *testing.T, target string, delay time.Duration) string {
	u, _ := url.Parse(target)
	p := httputil.NewSingleHostReverseProxy(u)
	p.ErrorLog = log.New(io.Discard, "", 0)
	p.ModifyResponse = func(*http.Response) error {
		time.Sleep(delay)
		return nil
	}
	ln := listen(t)
	srv := &http.Server{Handler: p}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestCancelledSlowSyncs: an app that gives up on slow syncs (300 ms
// against answers that take a second), again and again, cancels token
// requests the server has answered; the next sync with time enough works.
func TestCancelledSlowSyncs(t *testing.T) {
	ctx := context.Background()
	srv, base, now, unit := startClockedServer(t)
	via := slowProxy(t, base, time.Second)
	staff, _ := srv.AddStaff(ctx, unit.ID, schema.RoleOutreachWorker)
	code, _ := srv.NewEnrolCode(ctx, unit.ID, "test")
	c, _ := brygga.Open(ctx, filepath.Join(t.TempDir(), "t.db"), &brygga.Options{Now: now.Now})
	defer c.Close()
	if err := c.Enroll(ctx, via, code.Code); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c.SetStaff(ctx, staff.ID)
	rec := contact(schema.SettingStreet)
	if err := c.Add(ctx, rec); err != nil {
		t.Fatal(err)
	}
	now.Add(20 * time.Minute) // every sync needs a new token
	for i := range 3 {
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err := c.Sync(short)
		cancel()
		if err == nil {
			t.Fatalf("cancelled sync %d succeeded", i+1)
		}
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("sync after cancelled ones: %v", err)
	}
	if _, err := srv.Record(ctx, schema.KindContact, rec.ID); err != nil {
		t.Errorf("the contact is not on the server: %v", err)
	}
}

// TestBackgroundLoopRetriesAndSyncNow runs the background loop against a
// server that is down at first: the loop keeps retrying (within the
// interval) and syncs once the server is back; SyncNow syncs at once, as
// an app does when it sees the network return; and with nothing written,
// the loop still syncs every interval and brings in another device's work.
func TestBackgroundLoopRetriesAndSyncNow(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	// A gate in front of the server: while it is down, connections are
	// closed before the server hears anything.
	u, _ := url.Parse(r.url())
	proxy := httputil.NewSingleHostReverseProxy(u)
	var down atomic.Bool
	gate := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if down.Load() {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		proxy.ServeHTTP(w, req)
	})}
	ln := listen(t)
	go gate.Serve(ln)
	t.Cleanup(func() { gate.Close() })
	via := "http://" + ln.Addr().String()
	other := r.device(r.url(), r.team, r.teamStaf)

	c := r.deviceWith(via, r.team, r.teamStaf, &brygga.Options{SyncDelay: time.Hour, SyncInterval: 200 * time.Millisecond})
	down.Store(true)
	rec := contact(schema.SettingStreet)
	if err := c.Add(ctx, rec); err != nil {
		t.Fatal(err)
	}
	c.Start()
	defer c.Stop()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not happen", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("a failed sync", func() bool { st, _ := c.Status(ctx); return st.LastError != "" })
	time.Sleep(300 * time.Millisecond) // a few more failures
	if _, err := r.srv.Record(ctx, schema.KindContact, rec.ID); err == nil {
		t.Fatal("the record reached the server while it was down")
	}
	// Back online: a retry within the interval brings the record in.
	down.Store(false)
	waitFor("the retry after the server came back", func() bool {
		_, err := r.srv.Record(ctx, schema.KindContact, rec.ID)
		return err == nil
	})
	// Periodic: another device's contact reaches this one with no write here.
	theirs := contact(schema.SettingFixedSite)
	if err := other.Add(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	if err := other.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor("the periodic sync", func() bool {
		_, err := c.Get(ctx, schema.KindContact, theirs.ID)
		return err == nil
	})
	c.Stop()

	// SyncNow: with an hour's interval and delay, only SyncNow syncs soon.
	slow := r.deviceWith(r.url(), r.team, r.teamStaf, &brygga.Options{SyncDelay: time.Hour, SyncInterval: time.Hour})
	slow.Start()
	defer slow.Stop()
	now := contact(schema.SettingMobileUnit)
	if err := slow.Add(ctx, now); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := r.srv.Record(ctx, schema.KindContact, now.ID); err == nil {
		t.Fatal("synced before SyncNow")
	}
	slow.SyncNow()
	waitFor("the sync SyncNow asked for", func() bool {
		_, err := r.srv.Record(ctx, schema.KindContact, now.ID)
		return err == nil
	})
}

// TestRevocationWipesAfterTheTokenExpired: a tablet revoked while it was
// offline comes back after its access token has expired; the refresh is
// answered device_revoked, and the replica is wiped all the same.
func TestRevocationWipesAfterTheTokenExpired(t *testing.T) {
	ctx := context.Background()
	srv, base, now, unit := startClockedServer(t)
	code, _ := srv.NewEnrolCode(ctx, unit.ID, "test")
	tablet := filepath.Join(t.TempDir(), "tablet.db")
	c, _ := brygga.Open(ctx, tablet, nil)
	defer c.Close()
	if err := c.Enroll(ctx, base, code.Code); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.RevokeDevice(ctx, c.DeviceID(), "test"); err != nil {
		t.Fatal(err)
	}
	now.Add(20 * time.Minute) // the access token has expired
	if err := c.Sync(ctx); !errors.Is(err, brygga.ErrRevoked) {
		t.Fatalf("sync of a revoked device with an expired token: %v", err)
	}
	if _, err := os.Stat(tablet); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the replica is still there: %v", err)
	}
}

// startClockedServer serves a server whose clock the test sets, with one
// organisation and unit, on a loopback port until the test ends.
func startClockedServer(t *testing.T) (*server.Server, string, *fakeNow, *schema.Unit) {
	t.Helper()
	ctx := context.Background()
	now := &fakeNow{t: time.Now()}
	srv, err := server.Open(ctx, server.Config{DBPath: filepath.Join(t.TempDir(), "s.db"), Now: now.Now})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Shutdown(ctx)
		srv.Close()
	})
	org, _ := srv.AddOrganisation(ctx, schema.OrgMunicipality, "Åre kommun", "23")
	unit, err := srv.AddUnit(ctx, org.ID, "Fältgruppen", "2321")
	if err != nil {
		t.Fatal(err)
	}
	return srv, "http://" + ln.Addr().String(), now, unit
}
