package brygga_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/server"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/wire"
)

// flaky is a proxy that cuts sync connections at random: before the
// request reaches the server, or after the server has answered and before
// the answer reaches the device.
type flaky struct {
	proxy *httputil.ReverseProxy
	mu    sync.Mutex
	rng   *rand.Rand
	on    bool
	cuts  int
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	f.mu.Lock()
	fate := -1
	if f.on && strings.HasPrefix(req.URL.Path, "/v1/sync/") {
		fate = f.rng.IntN(10)
	}
	if fate >= 0 && fate < 4 {
		f.cuts++
	}
	f.mu.Unlock()
	switch fate {
	case 0, 1: // cut before the server hears it
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	case 2, 3: // the server answers; the answer is lost
		f.proxy.ServeHTTP(&discard{header: http.Header{}}, req)
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	default:
		f.proxy.ServeHTTP(w, req)
	}
}

func (f *flaky) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cuts
}

func (f *flaky) set(on bool) {
	f.mu.Lock()
	f.on = on
	f.mu.Unlock()
}

// TestRandomCuts syncs four devices of two organisations through a
// connection that fails at random points of push and pull, hundreds of
// times; afterwards nothing is lost or duplicated and every device holds
// what the server holds of its scope.
func TestRandomCuts(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	u, _ := url.Parse(r.url())
	f := &flaky{proxy: httputil.NewSingleHostReverseProxy(u), rng: rand.New(rand.NewPCG(42, 1))}
	proxy := &http.Server{Handler: f}
	ln := listen(t)
	go proxy.Serve(ln)
	t.Cleanup(func() { proxy.Close() })
	via := "http://" + ln.Addr().String()

	opts := func() *brygga.Options {
		return &brygga.Options{PushBatch: 3, PullPage: 4, HTTPClient: &http.Client{Timeout: 5 * time.Second}}
	}
	team := []*brygga.Client{r.deviceWith(via, r.team, r.teamStaf, opts()), r.deviceWith(via, r.team, r.teamStaf, opts()),
		r.deviceWith(via, r.team, r.teamStaf, opts())}
	clinic := r.deviceWith(via, r.clinic, r.clinStaf, opts())
	all := append(append([]*brygga.Client{}, team...), clinic)
	f.set(true)

	rng := rand.New(rand.NewPCG(7, 7))
	var made []uuid.UUID
	var refs []uuid.UUID
	failures := 0
	for i := 0; i < 400 && f.count() < 300; i++ {
		d := all[rng.IntN(len(all))]
		if d == clinic {
			if in, err := clinic.IncomingReferrals(ctx); err == nil && len(in) > 0 {
				ref := in[rng.IntN(len(in))]
				next := schema.ReferralStatusEnum.Codes()[min(ref.Status.Rank()+1+rng.IntN(2), 5)]
				var fe *schema.FieldError
				if err := clinic.SetReferralStatus(ctx, ref.ID, schema.ReferralStatus(next)); err != nil && !errors.Is(err, brygga.ErrStatusBackwards) &&
					!(errors.As(err, &fe) && fe.Rule == schema.RuleTransition) {
					t.Fatal(err)
				}
			}
		} else {
			for range 1 + rng.IntN(4) {
				c := contact(schema.SettingStreet)
				if err := d.Add(ctx, c); err != nil {
					t.Fatal(err)
				}
				made = append(made, c.ID)
				if rng.IntN(4) == 0 {
					ref := &schema.Referral{ContactID: c.ID, Service: schema.ServiceAddictionClinic, ToUnitID: r.clinic.ID, Status: schema.StatusSent}
					if err := d.Add(ctx, ref); err != nil {
						t.Fatal(err)
					}
					refs = append(refs, ref.ID)
				}
			}
		}
		if err := d.Sync(ctx); err != nil {
			failures++
		}
	}
	if n := f.count(); n < 200 {
		t.Fatalf("only %d cuts", n)
	}
	f.set(false)
	for range 2 {
		for _, d := range all {
			if err := d.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%d connections cut, %d syncs failed, %d contacts and %d referrals made", f.count(), failures, len(made), len(refs))

	if n := r.count(t, schema.KindContact, made); n != len(made) {
		t.Errorf("server holds %d of %d contacts", n, len(made))
	}
	for _, d := range team {
		got, err := d.Contacts(ctx, 100000)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uuid.UUID]int{}
		for _, c := range got {
			seen[c.ID]++
		}
		for _, id := range made {
			if seen[id] != 1 {
				t.Fatalf("contact %s on a team device %d times", id, seen[id])
			}
		}
		if len(got) != len(made) {
			t.Errorf("a team device holds %d contacts, %d were made", len(got), len(made))
		}
		if st, _ := d.Status(ctx); st.Pending != 0 || len(st.Rejected) != 0 {
			t.Errorf("status after the storm: pending %d, rejected %v", st.Pending, st.Rejected)
		}
	}
	// Every device agrees with the server on every referral's status.
	for _, id := range refs {
		want, err := r.srv.Record(ctx, schema.KindReferral, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range all {
			got, err := d.Get(ctx, schema.KindReferral, id)
			if err != nil {
				t.Fatal(err)
			}
			if got.(*schema.Referral).Status != want.(*schema.Referral).Status {
				t.Errorf("referral %s: device %s, server %s", id, got.(*schema.Referral).Status, want.(*schema.Referral).Status)
			}
		}
	}
}

// TestRestoredBackupIsRefused: a tablet restored from an old backup reuses
// mutation numbers the server has seen, for new records; the server
// refuses them as seq_reused and the device shows why, instead of the
// records being merged as duplicates or lost silently.
func TestRestoredBackupIsRefused(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "tablet.db")
	code, _ := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
	c, _ := brygga.Open(ctx, path, nil)
	if err := c.Enroll(ctx, r.url(), code.Code); err != nil {
		t.Fatal(err)
	}
	c.Sync(ctx)
	c.SetStaff(ctx, r.teamStaf.ID)
	for range 3 {
		c.Add(ctx, contact(schema.SettingStreet))
	}
	c.Close()
	backup := filepath.Join(dir, "backup.db")
	copyFileT(t, backup, path)

	c, _ = brygga.Open(ctx, path, nil)
	for range 2 {
		c.Add(ctx, contact(schema.SettingFixedSite))
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// Restore the backup: mutations 1-3 again (the same), then new records
	// that take numbers 4 and 5 again.
	copyFileT(t, path, backup)
	os.Remove(path + "-wal")
	os.Remove(path + "-shm")
	c, err := brygga.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var fresh []uuid.UUID
	made := map[uuid.UUID]*schema.Contact{}
	for range 2 {
		x := contact(schema.SettingShelter)
		c.Add(ctx, x)
		fresh = append(fresh, x.ID)
		made[x.ID] = x
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ := c.Status(ctx)
	reused := 0
	for _, rej := range st.Rejected {
		if rej.Error.Code == "seq_reused" {
			reused++
		}
		// The refused record can be shown as it was recorded, to be
		// recorded again.
		rec, err := rej.Record()
		if err != nil {
			t.Fatalf("rejection %d: %v", rej.Seq, err)
		}
		want, ok := made[rej.ID]
		got, _ := rec.(*schema.Contact)
		if !ok || got == nil || got.Setting != want.Setting || got.Gender != want.Gender || !got.OccurredAt.Equal(want.OccurredAt) {
			t.Errorf("rejection %d holds %+v, want %+v", rej.Seq, rec, want)
		}
	}
	if reused != 2 {
		t.Errorf("rejections after the restore: %+v", st.Rejected)
	}
	if n := r.count(t, schema.KindContact, fresh); n != 0 {
		t.Errorf("%d records of the restored tablet were merged", n)
	}
	// Recorded again (new ids, new numbers), they reach the server; the
	// worker dismisses the rejections.
	var again []uuid.UUID
	for _, rej := range st.Rejected {
		rec, _ := rej.Record()
		x := rec.(*schema.Contact)
		x.ID, x.UnitID, x.DeviceID, x.StaffID, x.Voided = uuid.Nil, uuid.Nil, uuid.Nil, uuid.Nil, false
		if err := c.Add(ctx, x); err != nil {
			t.Fatal(err)
		}
		again = append(again, x.ID)
		if err := c.DismissRejection(ctx, rej.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DismissRejection(ctx, 9999); !errors.Is(err, brygga.ErrNotFound) {
		t.Errorf("dismissing no rejection: %v", err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.count(t, schema.KindContact, again); n != len(again) {
		t.Errorf("%d of %d records recorded again reached the server", n, len(again))
	}
	if st, _ := c.Status(ctx); len(st.Rejected) != 0 {
		t.Errorf("rejections after dismissing them: %+v", st.Rejected)
	}
}

func copyFileT(t *testing.T, dst, src string) {
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestClockSkew: tablets whose clocks are ten days ahead or behind record
// the right time by default once they have synced, and nothing they record
// is lost.
func TestClockSkew(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	for _, skew := range []time.Duration{10 * 24 * time.Hour, -10 * 24 * time.Hour} {
		now := func() time.Time { return time.Now().Add(skew) }
		d := r.deviceWith(r.url(), r.team, r.teamStaf, &brygga.Options{Now: now})
		var ids []uuid.UUID
		for range 5 {
			c := contact(schema.SettingStreet)
			if err := d.Add(ctx, c); err != nil {
				t.Fatalf("skew %v: %v", skew, err)
			}
			ids = append(ids, c.ID)
			if dt := time.Until(c.OccurredAt); dt > time.Minute || dt < -time.Minute {
				t.Errorf("skew %v: recorded %v, %v from the true time", skew, c.OccurredAt, dt)
			}
		}
		if err := d.Sync(ctx); err != nil {
			t.Fatalf("skew %v: %v", skew, err)
		}
		if n := r.count(t, schema.KindContact, ids); n != len(ids) {
			t.Errorf("skew %v: server holds %d of %d", skew, n, len(ids))
		}
		if st, _ := d.Status(ctx); len(st.Rejected) != 0 {
			t.Errorf("skew %v: rejected %+v", skew, st.Rejected)
		}
	}
}

// TestOfflineMonth: a tablet offline for thirty days keeps recording (its
// reads are refused after the fourteen-day lease), then syncs everything
// with its refresh token and reads again.
func TestOfflineMonth(t *testing.T) {
	ctx := context.Background()
	clock := &fakeNow{t: time.Now()}
	dir := t.TempDir()
	srv, err := server.Open(ctx, server.Config{DBPath: filepath.Join(dir, "s.db"), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln := listen(t)
	go srv.Serve(ln)
	defer srv.Shutdown(ctx)
	org, _ := srv.AddOrganisation(ctx, schema.OrgMunicipality, "Bergs kommun", "23")
	unit, _ := srv.AddUnit(ctx, org.ID, "Fältteamet Berg", "2326")
	staff, _ := srv.AddStaff(ctx, unit.ID, schema.RoleOutreachWorker)
	code, _ := srv.NewEnrolCode(ctx, unit.ID, "test")
	c, _ := brygga.Open(ctx, filepath.Join(dir, "t.db"), &brygga.Options{Now: clock.Now})
	defer c.Close()
	if err := c.Enroll(ctx, "http://"+ln.Addr().String(), code.Code); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c.SetStaff(ctx, staff.ID)
	var ids []uuid.UUID
	for day := range 30 {
		clock.Add(24 * time.Hour)
		for range 3 {
			rec := contact(schema.SettingMobileUnit)
			if err := c.Add(ctx, rec); err != nil {
				t.Fatalf("day %d: %v", day, err)
			}
			ids = append(ids, rec.ID)
		}
		_, err := c.Today(ctx)
		if day >= 14 && !errors.Is(err, brygga.ErrLeaseExpired) {
			t.Fatalf("day %d: read allowed after the lease: %v", day, err)
		}
		if day < 13 && err != nil {
			t.Fatalf("day %d: %v", day, err)
		}
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("sync after a month offline: %v", err)
	}
	got, err := c.Contacts(ctx, 1000)
	if err != nil || len(got) != len(ids) {
		t.Fatalf("after the sync: %d contacts, %v", len(got), err)
	}
	for _, id := range ids {
		if _, err := srv.Record(ctx, schema.KindContact, id); err != nil {
			t.Fatalf("contact %s missing on the server: %v", id, err)
		}
	}
}

// startHeaderProxy starts a proxy in front of the server that passes pull
// answers through edit, which may change their headers.
func startHeaderProxy(t *testing.T, target string, edit func(http.Header)) string {
	u, _ := url.Parse(target)
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(resp *http.Response) error {
		if strings.HasPrefix(resp.Request.URL.Path, "/v1/sync/pull") {
			edit(resp.Header)
		}
		return nil
	}
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestPullWithoutCursorHeaders: a server that does not repeat the cursor
// in a header is pulled from page by page, each read before the next is
// asked for.
func TestPullWithoutCursorHeaders(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	var mu sync.Mutex
	stripped := 0
	via := startHeaderProxy(t, r.url(), func(h http.Header) {
		mu.Lock()
		defer mu.Unlock()
		if h.Get(wire.HeaderCursor) != "" {
			stripped++
		}
		h.Del(wire.HeaderCursor)
		h.Del(wire.HeaderHasMore)
	})
	b := r.deviceWith(via, r.team, r.teamStaf, &brygga.Options{PullPage: 10})
	addContacts(t, r.device(r.url(), r.team, r.teamStaf), 25)
	mu.Lock()
	stripped = 0
	mu.Unlock()
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Contacts(ctx, 1000); len(got) != 25 {
		t.Errorf("device holds %d of 25 contacts", len(got))
	}
	mu.Lock()
	defer mu.Unlock()
	if stripped != 3 {
		t.Errorf("the proxy took the headers off %d answers, want the three pages'", stripped)
	}
}

// addContacts records n contacts on the device and syncs them.
func addContacts(t *testing.T, dev *brygga.Client, n int) {
	t.Helper()
	ctx := context.Background()
	for range n {
		if err := dev.Add(ctx, contact(schema.SettingFixedSite)); err != nil {
			t.Fatal(err)
		}
	}
	if err := dev.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPullCursorHeaderDisagrees: an answer whose header names another
// cursor than its body fails the pull, and applies nothing it should not.
func TestPullCursorHeaderDisagrees(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	var mu sync.Mutex
	lie := false
	via := startHeaderProxy(t, r.url(), func(h http.Header) {
		mu.Lock()
		defer mu.Unlock()
		if lie && h.Get(wire.HeaderHasMore) == "true" {
			c, err := wire.ParseCursor(h.Get(wire.HeaderCursor))
			if err != nil {
				t.Error(err)
				return
			}
			c.Seq += 3 // would skip three changes
			h.Set(wire.HeaderCursor, c.String())
		}
	})
	b := r.deviceWith(via, r.team, r.teamStaf, &brygga.Options{PullPage: 10})
	addContacts(t, r.device(r.url(), r.team, r.teamStaf), 25)
	mu.Lock()
	lie = true
	mu.Unlock()
	if err := b.Sync(ctx); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("sync with a lying header: %v, want the disagreement", err)
	}
	mu.Lock()
	lie = false
	mu.Unlock()
	if got, _ := b.Contacts(ctx, 1000); len(got) != 0 {
		t.Errorf("after the failed pull the device holds %d contacts, want none", len(got))
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Contacts(ctx, 1000); len(got) != 25 {
		t.Errorf("device holds %d of 25 contacts", len(got))
	}
}
