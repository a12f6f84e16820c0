package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/pgstore/pgtest"
	"github.com/brygga/brygga/sync/replica"
)

// lb is a load balancer in front of several servers: each request goes
// to one of the live servers at random, as a balancer in front of a
// deployment sends a device's requests to whichever instance it picks. A
// server that does not answer is taken out, as a health check would,
// and the request's connection is closed, as the connection to the dead
// server was: the device sees the network fail, not an answer.
type lb struct {
	mu       sync.Mutex
	rnd      *rand.Rand
	backends []*url.URL
	url      string
	// failed counts the requests a server did not answer.
	failed atomic.Int64
}

func newLB(t *testing.T, backends ...string) *lb {
	b := &lb{rnd: rand.New(rand.NewPCG(1, 2))}
	for _, u := range backends {
		b.add(t, u)
	}
	// The balancer's own connections to the servers, closed when the
	// test ends so that the servers it talked to can stop.
	conns := &http.Transport{}
	proxy := &httputil.ReverseProxy{
		Transport: apiCheck.Transport(conns),
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(b.pick()) },
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			b.failed.Add(1)
			b.remove(r.URL.Host)
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		},
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(func() {
		srv.Close()
		conns.CloseIdleConnections()
	})
	b.url = srv.URL
	return b
}

func (b *lb) add(t *testing.T, backend string) {
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = append(b.backends, u)
}

func (b *lb) remove(host string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = slices.DeleteFunc(b.backends, func(u *url.URL) bool { return u.Host == host })
}

func (b *lb) pick() *url.URL {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.backends[b.rnd.IntN(len(b.backends))]
}

// child is bryggad serving in a process of its own, which a test can kill.
type child struct {
	cmd *exec.Cmd
	url string
}

// serveChild starts bryggad serving db in a process of its own.
func serveChild(t *testing.T, db string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childArgs+"="+strings.Join([]string{"serve", "--db", db, "--addr", "127.0.0.1:0"}, "\x1f"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if _, u, ok := strings.Cut(lines.Text(), "listening on "); ok {
			go io.Copy(io.Discard, out)
			return &child{cmd: cmd, url: strings.Fields(u)[0]}
		}
	}
	t.Fatalf("bryggad in a process of its own did not start: %v", lines.Err())
	return nil
}

// kill kills the process with SIGKILL, whatever it is doing.
func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
}

// TestThreeInstancesConverge runs three bryggad on one PostgreSQL behind a
// load balancer that sends every request to one of them at random. Field
// teams of two units record contacts, exchanges and referrals to each
// other's unit, correct and void them, and update the status of the
// referrals they receive, all at once, each tablet syncing through the
// balancer after each round; in the middle an administrator rotates the
// signing key on the command line. Afterwards every tablet syncs until
// quiet, and the convergence checks hold: nothing any tablet recorded is
// lost, nothing is applied twice, nothing is rejected, and every tablet
// holds exactly what a tablet of its unit enrolled afterwards pulls from
// the server.
func TestThreeInstancesConverge(t *testing.T) {
	db := pgtest.URL(t)
	ctx := context.Background()
	first, _ := serveOn(t, db, true)
	second, _ := serveOn(t, db, false)
	second.accounts = first.accounts
	third := serveChild(t, db)
	lb := newLB(t, first.url, second.url, third.url)

	var units bytes.Buffer
	if err := Run(ctx, []string{"unit", "list", "--db", db}, nil, &units, io.Discard); err != nil {
		t.Fatal(err)
	}
	unitNamed := func(name string) uuid.UUID {
		for _, line := range strings.Split(units.String(), "\n") {
			if f := strings.Split(line, "\t"); len(f) == 4 && f[3] == name {
				return uuid.MustParse(f[0])
			}
		}
		t.Fatalf("no unit %q in\n%s", name, units.String())
		return uuid.Nil
	}
	teams := []uuid.UUID{unitNamed("Fältgruppen Östersund"), unitNamed("Mobila teamet Åre")}
	code := func(unit uuid.UUID) string {
		var out bytes.Buffer
		if err := Run(ctx, []string{"device", "enroll-code", "--db", db, "--unit", unit.String()}, nil, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(strings.SplitN(out.String(), "\n", 2)[0])
	}
	dir := t.TempDir()
	opts := func() *brygga.Options {
		return &brygga.Options{HTTPClient: &http.Client{Timeout: 60 * time.Second}, PushBatch: 7, PullPage: 11}
	}
	type tablet struct {
		c         *brygga.Client
		path      string
		unit      uuid.UUID
		other     uuid.UUID
		mutations int64
		created   []schema.Record
	}
	enrol := func(name string, unit uuid.UUID) *tablet {
		path := filepath.Join(dir, name+".db")
		c, err := brygga.Open(ctx, path, opts())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Enroll(ctx, lb.url, code(unit)); err != nil {
			t.Fatalf("enrol %s: %v", name, err)
		}
		if err := c.Sync(ctx); err != nil {
			t.Fatalf("%s: first sync: %v", name, err)
		}
		staff, err := c.StaffList(ctx)
		if err != nil || len(staff) == 0 {
			t.Fatalf("%s: staff %v, %v", name, staff, err)
		}
		if err := c.SetStaff(ctx, staff[0].ID); err != nil {
			t.Fatal(err)
		}
		return &tablet{c: c, path: path, unit: unit}
	}
	const perTeam, rounds = 4, 8
	var tablets []*tablet
	for i := range perTeam * len(teams) {
		d := enrol(fmt.Sprintf("tablet%d", i), teams[i%2])
		d.other = teams[(i+1)%2]
		tablets = append(tablets, d)
	}

	// Each tablet's rounds, all tablets at once.
	at := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Millisecond)
	round := func(d *tablet, rnd *rand.Rand, r int) error {
		for j := range 3 {
			con := &schema.Contact{Header: schema.Header{OccurredAt: at.Add(time.Duration(r*10+j) * time.Minute)},
				Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380"}
			if err := d.c.Add(ctx, con); err != nil {
				return err
			}
			d.mutations++
			d.created = append(d.created, con)
			ex := &schema.SyringeExchange{Header: schema.Header{OccurredAt: con.OccurredAt}, ContactID: con.ID, SyringesOut: 1 + rnd.IntN(20), SyringesReturned: rnd.IntN(20)}
			if err := d.c.Add(ctx, ex); err != nil {
				return err
			}
			d.mutations++
			d.created = append(d.created, ex)
		}
		if r%2 == 0 {
			ref := &schema.Referral{Header: schema.Header{OccurredAt: at.Add(time.Duration(r*10+5) * time.Minute)},
				Service: schema.ServiceSocialServices, ToUnitID: d.other, Status: schema.StatusSent}
			if err := d.c.Add(ctx, ref); err != nil {
				return err
			}
			d.mutations++
			d.created = append(d.created, ref)
		}
		// A correction and, now and then, a void of an earlier record.
		if ex, ok := d.created[rnd.IntN(len(d.created))].(*schema.SyringeExchange); ok {
			ex.NeedlesOut = 1 + rnd.IntN(9)
			if err := d.c.Correct(ctx, ex, "needles_out"); err != nil {
				return err
			}
			d.mutations++
		}
		if rnd.IntN(3) == 0 {
			if con, ok := d.created[rnd.IntN(len(d.created))].(*schema.Contact); ok {
				if err := d.c.Void(ctx, schema.KindContact, con.ID); err != nil {
					return err
				}
				d.mutations++
			}
		}
		// The referrals this unit received from the other team move on.
		in, err := d.c.IncomingReferrals(ctx)
		if err != nil {
			return err
		}
		for _, ref := range in {
			next := schema.StatusReceived
			if ref.Status == schema.StatusReceived {
				next = schema.StatusAttended
			}
			if ref.Status.Closes() || ref.Status == schema.StatusDeclined || rnd.IntN(2) == 0 {
				continue
			}
			if err := d.c.SetReferralStatus(ctx, ref.ID, next); err != nil {
				return err
			}
			d.mutations++
		}
		return syncThrough(ctx, d.c)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(tablets)+1)
	for i, d := range tablets {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(i), 7))
			for r := range rounds {
				if err := round(d, rnd, r); err != nil {
					errs <- fmt.Errorf("tablet %d round %d: %w", i, r, err)
					return
				}
			}
		})
	}
	// Meanwhile the third instance is killed in the middle of what it
	// serves, and a new one takes its place; and the signing key is
	// rotated.
	var replacement *child
	wg.Go(func() {
		time.Sleep(300 * time.Millisecond)
		if err := Run(ctx, []string{"key", "rotate", "--db", db}, nil, io.Discard, io.Discard); err != nil {
			errs <- fmt.Errorf("key rotate: %w", err)
		}
		time.Sleep(300 * time.Millisecond)
		third.kill()
		time.Sleep(300 * time.Millisecond)
		replacement = serveChild(t, db)
		lb.add(t, replacement.url)
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	// The key rotated on the command line signs every instance's tokens,
	// and each instance accepts the others'.
	var newest string
	if err := conn.QueryRow(ctx, `SELECT kid FROM signing_keys WHERE retired_at IS NULL`).Scan(&newest); err != nil {
		t.Fatal(err)
	}
	var keys int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM signing_keys`).Scan(&keys); err != nil || keys != 2 {
		t.Fatalf("%d signing keys after one rotation (%v)", keys, err)
	}
	if lb.failed.Load() == 0 {
		t.Error("no request met the killed instance: the kill came too late to test anything")
	}
	t.Logf("%d requests met the killed instance; %d syncs were cut by it and tried again", lb.failed.Load(), broken.Load())
	servers := []*bryggad{first, second, {url: replacement.url, accounts: first.accounts}}
	for i, b := range servers {
		token := b.account(t, "manager").AccessToken
		if kid := tokenKid(t, token); kid != newest {
			t.Errorf("instance %d signs with key %s, not the rotated key %s", i, kid, newest)
		}
		other := servers[(i+1)%len(servers)]
		if st, e := other.call(t, "GET", "/v1/devices", token, nil, nil); e != nil {
			t.Errorf("instance %d's token at instance %d: %d %v", i, (i+1)%len(servers), st, e)
		}
	}

	// Every tablet syncs until quiet: twice round, so that each holds the
	// others' last writes.
	for range 2 {
		for i, d := range tablets {
			if err := syncThrough(ctx, d.c); err != nil {
				t.Fatalf("tablet %d: final sync: %v", i, err)
			}
		}
	}

	// Nothing rejected, nothing pending; each tablet's writes applied
	// once each, as the server counts them.
	for i, d := range tablets {
		st, err := d.c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending != 0 || len(st.Rejected) != 0 {
			t.Errorf("tablet %d: %d pending, rejected %+v", i, st.Pending, st.Rejected)
		}
		var applied, rejected int64
		if err := conn.QueryRow(ctx, `SELECT applied, rejected FROM devices WHERE id = $1`, d.c.DeviceID()).Scan(&applied, &rejected); err != nil {
			t.Fatal(err)
		}
		if applied != d.mutations || rejected != 0 {
			t.Errorf("tablet %d made %d writes; the server applied %d and rejected %d", i, d.mutations, applied, rejected)
		}
		// Every record it made is on the server, once.
		for _, rec := range d.created {
			var n int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+string(rec.Kind())+` WHERE id = $1`, schema.HeaderOf(rec).ID).Scan(&n); err != nil || n != 1 {
				t.Errorf("tablet %d: %s %s is on the server %d times (%v)", i, rec.Kind(), schema.HeaderOf(rec).ID, n, err)
			}
		}
	}
	var made int
	for _, d := range tablets {
		made += len(d.created)
	}
	var stored int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM contacts) + (SELECT count(*) FROM syringe_exchanges) + (SELECT count(*) FROM referrals)`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != made {
		t.Errorf("the tablets made %d records; the server holds %d", made, stored)
	}

	// Each tablet holds what a new tablet of its unit pulls.
	fieldKinds := []schema.Kind{schema.KindContact, schema.KindSyringeExchange, schema.KindReferral}
	rowsOf := func(path string) map[string]string {
		dev, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Close()
		out := map[string]string{}
		for _, k := range fieldKinds {
			rows, err := dev.Rows(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				data, err := json.Marshal(r.Record)
				if err != nil {
					t.Fatal(err)
				}
				out[string(k)+"/"+schema.HeaderOf(r.Record).ID.String()] = string(data)
			}
		}
		return out
	}
	for ti, unit := range teams {
		witness := enrol(fmt.Sprintf("witness%d", ti), unit)
		if err := syncThrough(ctx, witness.c); err != nil {
			t.Fatal(err)
		}
		witness.c.Close()
		want := rowsOf(witness.path)
		if len(want) == 0 {
			t.Fatalf("unit %s: a new tablet pulled nothing", unit)
		}
		for i, d := range tablets {
			if d.unit != unit {
				continue
			}
			d.c.Close()
			got := rowsOf(d.path)
			if len(got) != len(want) {
				t.Errorf("tablet %d holds %d records; its unit's scope on the server has %d", i, len(got), len(want))
			}
			for id, w := range want {
				if got[id] != w {
					t.Errorf("tablet %d: %s\n holds   %s\n server: %s", i, id, got[id], w)
				}
			}
		}
	}
}

// tokenKid returns the key id in a token's header.
func tokenKid(t *testing.T, token string) string {
	head, _, _ := strings.Cut(token, ".")
	data, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// broken counts the syncs that met a network failure.
var broken atomic.Int64

// syncThrough syncs c, again while the network fails (a server killed
// under it), as a tablet's sync loop does.
func syncThrough(ctx context.Context, c *brygga.Client) error {
	var err error
	for range 20 {
		if err = c.Sync(ctx); !brygga.Unreachable(err) {
			return err
		}
		broken.Add(1)
		time.Sleep(50 * time.Millisecond)
	}
	return err
}
