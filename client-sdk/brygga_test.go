package brygga_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
)

// region is a running server with two organisations: a municipality whose
// outreach team records, and a region whose clinic receives referrals.
type region struct {
	t        *testing.T
	db       string
	addr     string
	srv      *server.Server
	done     chan error
	team     *schema.Unit
	clinic   *schema.Unit
	teamStaf *schema.Staff
	clinStaf *schema.Staff
}

func startRegion(t *testing.T) *region {
	t.Helper()
	r := &region{t: t, db: filepath.Join(t.TempDir(), "server.db")}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	ctx := context.Background()
	muni, err := r.srv.AddOrganisation(ctx, schema.OrgMunicipality, "Östersunds kommun", "23")
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := r.srv.AddOrganisation(ctx, schema.OrgRegion, "Region Jämtland Härjedalen", "23")
	r.team, _ = r.srv.AddUnit(ctx, muni.ID, "Fältgruppen", "2380")
	r.clinic, _ = r.srv.AddUnit(ctx, reg.ID, "Beroendemottagningen", "2380", schema.ServiceAddictionClinic)
	r.teamStaf, _ = r.srv.AddStaff(ctx, r.team.ID, schema.RoleOutreachWorker)
	r.clinStaf, _ = r.srv.AddStaff(ctx, r.clinic.ID, schema.RoleNurse)
	t.Cleanup(r.stop)
	return r
}

func (r *region) serve(ln net.Listener) {
	srv, err := server.Open(context.Background(), server.Config{DBPath: r.db, PublicURL: "http://" + r.addr})
	if err != nil {
		r.t.Fatal(err)
	}
	r.srv, r.done = srv, make(chan error, 1)
	go func() { r.done <- srv.Serve(ln) }()
}

func (r *region) stop() {
	if r.srv == nil {
		return
	}
	r.srv.Shutdown(context.Background())
	<-r.done
	r.srv.Close()
	r.srv = nil
}

func (r *region) restart() {
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.serve(ln)
}

func (r *region) url() string { return "http://" + r.addr }

// device enrols a new device of unit through url and sets its staff.
func (r *region) device(url string, unit *schema.Unit, staff *schema.Staff) *brygga.Client {
	r.t.Helper()
	return r.deviceWith(url, unit, staff, &brygga.Options{HTTPClient: &http.Client{Timeout: 10 * time.Second}})
}

func (r *region) deviceWith(url string, unit *schema.Unit, staff *schema.Staff, opts *brygga.Options) *brygga.Client {
	r.t.Helper()
	ctx := context.Background()
	code, err := r.srv.NewEnrolCode(ctx, unit.ID, "test")
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := brygga.Open(ctx, filepath.Join(r.t.TempDir(), uuid.NewString()+".db"), opts)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	if err := c.Enroll(ctx, url, code.Code); err != nil {
		r.t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		r.t.Fatal(err)
	}
	if err := c.SetStaff(ctx, staff.ID); err != nil {
		r.t.Fatal(err)
	}
	return c
}

func contact(setting schema.Setting) *schema.Contact {
	return &schema.Contact{Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: setting, AreaCode: "2380"}
}

// count returns how many records of kind k with the ids the server holds.
func (r *region) count(t *testing.T, k schema.Kind, ids []uuid.UUID) int {
	n := 0
	for _, id := range ids {
		_, err := r.srv.Record(context.Background(), k, id)
		switch {
		case err == nil:
			n++
		case !errors.Is(err, server.ErrNotFound):
			t.Fatal(err)
		}
	}
	return n
}

func TestOfflineThenSync(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	a := r.device(r.url(), r.team, r.teamStaf)
	b := r.device(r.url(), r.team, r.teamStaf)
	r.stop()

	// The server is down: recording works.
	var ids []uuid.UUID
	for i := range 30 {
		c := contact(schema.SettingStreet)
		if err := a.Add(ctx, c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
		if i%3 == 0 {
			x := &schema.SyringeExchange{ContactID: c.ID, SyringesOut: 10, SyringesReturned: 8}
			if err := a.Add(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.Sync(ctx); err == nil {
		t.Fatal("sync with the server down succeeded")
	}
	st, _ := a.Status(ctx)
	if st.Pending != 40 || st.LastError == "" {
		t.Errorf("status offline: %+v", st)
	}

	r.restart()
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.count(t, schema.KindContact, ids); n != 30 {
		t.Errorf("server holds %d of 30 contacts", n)
	}
	got, err := b.Contacts(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uuid.UUID]int{}
	for _, c := range got {
		seen[c.ID]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("contact %s on the second device %d times", id, seen[id])
		}
	}
	if st, _ := a.Status(ctx); st.Pending != 0 || st.LastSync == nil {
		t.Errorf("status after sync: %+v", st)
	}
}

// cutter is a proxy in front of the server that can cut the connection
// after the server has answered, so the client never hears the answer.
type cutter struct {
	proxy *httputil.ReverseProxy
	skip  atomic.Int32 // how many requests to path to let through first
	cut   atomic.Int32 // how many answers to path to swallow then
	path  atomic.Value
}

func (c *cutter) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if p, _ := c.path.Load().(string); p != "" && strings.HasPrefix(req.URL.Path, p) && c.skip.Add(-1) < 0 && c.cut.Add(-1) >= 0 {
		rec := &discard{header: http.Header{}}
		c.proxy.ServeHTTP(rec, req)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	c.proxy.ServeHTTP(w, req)
}

type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

func startCutter(t *testing.T, target string) (*cutter, string) {
	u, _ := url.Parse(target)
	c := &cutter{proxy: httputil.NewSingleHostReverseProxy(u)}
	c.proxy.ErrorLog = nil
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: c}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return c, "http://" + ln.Addr().String()
}

func TestCutConnection(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	cut, via := startCutter(t, r.url())
	a := r.device(via, r.team, r.teamStaf)
	b := r.deviceWith(via, r.team, r.teamStaf, &brygga.Options{PullPage: 10})

	var ids []uuid.UUID
	for range 25 {
		c := contact(schema.SettingFixedSite)
		if err := a.Add(ctx, c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	// Mid-push: the server applies the push, the answer never arrives.
	cut.path.Store("/v1/sync/push")
	cut.cut.Store(1)
	if err := a.Sync(ctx); err == nil {
		t.Fatal("sync survived a cut connection")
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.count(t, schema.KindContact, ids); n != 25 {
		t.Errorf("server holds %d of 25", n)
	}

	// Mid-pull: b pulls in pages of 10; every page after the first is lost
	// (the transport retries a lost answer on another connection), until
	// the network comes back; the next sync resumes.
	cut.path.Store("/v1/sync/pull")
	cut.skip.Store(1)
	cut.cut.Store(1 << 30)
	if err := b.Sync(ctx); err == nil {
		t.Fatal("pull survived a cut connection")
	}
	cut.cut.Store(0)
	if part, _ := b.Contacts(ctx, 1000); len(part) != 10 {
		t.Errorf("after the cut the device holds %d contacts, want the first page's 10", len(part))
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := b.Contacts(ctx, 1000)
	if len(got) != 25 {
		t.Errorf("second device holds %d of 25 contacts", len(got))
	}
	if st, _ := a.Status(ctx); st.Pending != 0 || len(st.Rejected) != 0 {
		t.Errorf("after retries: %+v", st)
	}
}

func TestReferralAcrossOrganisations(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	team := r.device(r.url(), r.team, r.teamStaf)
	clinic1 := r.device(r.url(), r.clinic, r.clinStaf)
	clinic2 := r.device(r.url(), r.clinic, r.clinStaf)

	ref := &schema.Referral{Service: schema.ServiceAddictionClinic, ToUnitID: r.clinic.ID, Status: schema.StatusSent}
	if err := team.Add(ctx, ref); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*brygga.Client{team, clinic1, clinic2} {
		if err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	in, err := clinic1.IncomingReferrals(ctx)
	if err != nil || len(in) != 1 || in[0].ID != ref.ID {
		t.Fatalf("incoming referrals: %v %v", in, err)
	}
	// Offline, concurrently, in two organisations: a clinic device (the
	// region's) records attendance; later by the clock, the team that
	// sent the referral (the municipality's) and another clinic device
	// record that it was received. The furthest status wins everywhere.
	if err := clinic1.SetReferralStatus(ctx, ref.ID, schema.StatusAttended); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if err := team.SetReferralStatus(ctx, ref.ID, schema.StatusReceived); err != nil {
		t.Fatal(err)
	}
	if err := clinic2.SetReferralStatus(ctx, ref.ID, schema.StatusReceived); err != nil {
		t.Fatal(err)
	}
	if err := clinic1.SetReferralStatus(ctx, ref.ID, schema.StatusSent); !errors.Is(err, brygga.ErrStatusBackwards) {
		t.Errorf("moving back: %v", err)
	}
	for range 2 {
		for _, c := range []*brygga.Client{team, clinic2, clinic1} {
			if err := c.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, c := range []*brygga.Client{team, clinic1, clinic2} {
		rec, err := c.Get(ctx, schema.KindReferral, ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.(*schema.Referral).Status; got != schema.StatusAttended {
			t.Errorf("device %d: status %s, want attended", i, got)
		}
	}
	// The team may not move another unit's referral... but the clinic may
	// reopen it, and the reopening reaches everyone.
	if err := clinic2.ReopenReferral(ctx, ref.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*brygga.Client{clinic2, team} {
		if err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rec, _ := team.Get(ctx, schema.KindReferral, ref.ID)
	if got := rec.(*schema.Referral); got.Status != schema.StatusSent || got.Reopened != 1 {
		t.Errorf("after reopening: %s %d", got.Status, got.Reopened)
	}
}

func TestRevocationWipes(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	dir := t.TempDir()
	code, _ := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
	path := filepath.Join(dir, "tablet.db")
	c, err := brygga.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Enroll(ctx, r.url(), code.Code); err != nil {
		t.Fatal(err)
	}
	if err := c.Enroll(ctx, r.url(), code.Code); err != nil {
		t.Errorf("the same enrolment again: %v", err)
	}
	other, _ := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
	if err := c.Enroll(ctx, r.url(), other.Code); !errors.Is(err, brygga.ErrAlreadyEnrolled) {
		t.Errorf("second enrolment: %v", err)
	}
	c.Sync(ctx)
	c.SetStaff(ctx, r.teamStaf.ID)
	c.Add(ctx, contact(schema.SettingStreet))
	if err := r.srv.RevokeDevice(ctx, c.DeviceID(), "test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); !errors.Is(err, brygga.ErrRevoked) {
		t.Fatalf("sync of a revoked device: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("replica files left after wipe: %v", entries)
	}
	if _, err := c.Today(ctx); !errors.Is(err, brygga.ErrNotEnrolled) {
		t.Errorf("read after wipe: %v", err)
	}
}

func TestValidationAndEnrolErrors(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	c, _ := brygga.Open(ctx, filepath.Join(t.TempDir(), "t.db"), nil)
	defer c.Close()
	if err := c.Add(ctx, contact(schema.SettingStreet)); !errors.Is(err, brygga.ErrNotEnrolled) {
		t.Errorf("record before enrolment: %v", err)
	}
	if err := c.Enroll(ctx, r.url(), "AAAA-BBBB-CCCC"); !errors.Is(err, brygga.ErrEnrolCode) {
		t.Errorf("bad code: %v", err)
	}
	d := r.device(r.url(), r.team, r.teamStaf)
	bad := contact("park")
	err := d.Add(ctx, bad)
	var fe *schema.FieldError
	if !errors.As(err, &fe) || fe.Field != "setting" || !errors.Is(err, brygga.ErrInvalid) {
		t.Errorf("invalid setting: %v", err)
	}
	if n, _ := d.Status(ctx); n.Pending != 0 {
		t.Errorf("an invalid record was queued")
	}
	if _, err := d.ClientHistory(ctx, "not a code"); !errors.Is(err, brygga.ErrInvalid) {
		t.Errorf("bad client code: %v", err)
	}
	cl, err := d.NewClient(ctx, schema.GenderMan, 1990, "")
	if err != nil {
		t.Fatal(err)
	}
	visit := contact(schema.SettingStreet)
	visit.ClientCode = cl.Code
	d.Add(ctx, visit)
	h, err := d.ClientHistory(ctx, strings.ToLower(string(cl.Code)))
	if err != nil || h.Client == nil || len(h.Contacts) != 1 {
		t.Errorf("history: %+v %v", h, err)
	}
}

// BenchmarkAdd records contacts on an enrolled device, offline: the time a
// worker waits after tapping save.
func BenchmarkAdd(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	srv, err := server.Open(ctx, server.Config{DBPath: filepath.Join(dir, "s.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Shutdown(ctx)
	org, _ := srv.AddOrganisation(ctx, schema.OrgMunicipality, "Krokoms kommun", "23")
	unit, _ := srv.AddUnit(ctx, org.ID, "Teamet", "2309")
	staff, _ := srv.AddStaff(ctx, unit.ID, schema.RoleOutreachWorker)
	code, _ := srv.NewEnrolCode(ctx, unit.ID, "bench")
	c, _ := brygga.Open(ctx, filepath.Join(dir, "t.db"), nil)
	defer c.Close()
	if err := c.Enroll(ctx, "http://"+ln.Addr().String(), code.Code); err != nil {
		b.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	if err := c.SetStaff(ctx, staff.ID); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := c.Add(ctx, contact(schema.SettingStreet)); err != nil {
			b.Fatal(err)
		}
	}
}

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
