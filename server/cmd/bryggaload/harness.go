package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// batchSize is the mutations of one push: the protocol's limit.
const batchSize = wire.MaxMutations

// unitRef is a unit of the load server and a staff member of it.
type unitRef struct {
	unit, staff uuid.UUID
}

// loadServer is the real server, running in this process on a loopback
// listener with a database in a temporary directory, or a fresh database
// on a PostgreSQL server served by one or more instances.
type loadServer struct {
	srv    *server.Server // the first instance; nil once moved to children
	url    string         // the first instance's URL
	dir    string
	served chan error
	units  []unitRef
	// others are the further instances on a PostgreSQL database.
	others []*instance
	// urls are every instance's URL; devices are spread over them.
	urls     []string
	next     atomic.Int64
	children []*child // the servers' own processes, if they moved to them
	pg       *pgDatabase
}

// instance is a further server on the same database.
type instance struct {
	srv    *server.Server
	served chan error
}

// backend is where a load server keeps its state: a SQLite file (the
// zero backend), or a database of its own on the PostgreSQL server
// postgres, served by instances servers at once.
type backend struct {
	postgres  string
	instances int
}

// dbPath is the server's database: its SQLite file, or its PostgreSQL URL.
func (ls *loadServer) dbPath() string {
	if ls.pg != nil {
		return ls.pg.url
	}
	return filepath.Join(ls.dir, "brygga.db")
}

// startServer opens a server on a fresh SQLite database with one
// organisation of units units, each with one staff member, and serves it
// on 127.0.0.1.
func startServer(ctx context.Context, units int) (ls *loadServer, err error) {
	return startServerOn(ctx, units, backend{})
}

// startServerOn is startServer on be.
func startServerOn(ctx context.Context, units int, be backend) (ls *loadServer, err error) {
	dir, err := os.MkdirTemp("", "bryggaload-")
	if err != nil {
		return nil, err
	}
	ls = &loadServer{dir: dir, served: make(chan error, 1)}
	defer func() {
		if err != nil {
			ls.close()
		}
	}()
	if be.postgres != "" {
		if ls.pg, err = createDatabase(ctx, be.postgres); err != nil {
			return ls, err
		}
	}
	open := func() (*server.Server, net.Listener, error) {
		srv, err := server.Open(ctx, server.Config{
			DBPath: ls.dbPath(),
			// Long enough that no token of a long run expires.
			AccessTTL: 6 * time.Hour,
		})
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			srv.Close()
			return nil, nil, err
		}
		ls.urls = append(ls.urls, "http://"+ln.Addr().String())
		return srv, ln, nil
	}
	srv, ln, err := open()
	if err != nil {
		return ls, err
	}
	ls.srv, ls.url = srv, "http://"+ln.Addr().String()
	go func() { ls.served <- srv.Serve(ln) }()
	for range max(1, be.instances) - 1 {
		srv, ln, err := open()
		if err != nil {
			return ls, err
		}
		in := &instance{srv: srv, served: make(chan error, 1)}
		ls.others = append(ls.others, in)
		go func() { in.served <- srv.Serve(ln) }()
	}

	org, err := ls.srv.AddOrganisation(ctx, schema.OrgMunicipality, "Lasttest kommun", "23")
	if err != nil {
		return ls, err
	}
	for i := range units {
		u, err := ls.srv.AddUnit(ctx, org.ID, fmt.Sprintf("Uppsökande team %d", i+1), "2380")
		if err != nil {
			return ls, err
		}
		st, err := ls.srv.AddStaff(ctx, u.ID, schema.RoleOutreachWorker)
		if err != nil {
			return ls, err
		}
		ls.units = append(ls.units, unitRef{unit: u.ID, staff: st.ID})
	}
	return ls, nil
}

// nextInstance returns the instance the next device uses: each in turn.
func (ls *loadServer) nextInstance() int {
	return int(ls.next.Add(1)-1) % len(ls.urls)
}

// close stops serving, closes the database and removes it.
func (ls *loadServer) close() error {
	err := ls.stopServing()
	for _, c := range ls.children {
		if cerr := c.stop(); err == nil {
			err = cerr
		}
	}
	if ls.pg != nil {
		if derr := ls.pg.drop(); err == nil {
			err = derr
		}
	}
	if rerr := os.RemoveAll(ls.dir); err == nil {
		err = rerr
	}
	return err
}

// stopServing stops the servers in this process and closes their
// databases.
func (ls *loadServer) stopServing() error {
	if ls.srv == nil {
		return nil
	}
	stop := func(srv *server.Server, served chan error) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		select {
		case serr := <-served:
			if err == nil {
				err = serr
			}
		case <-ctx.Done():
		}
		if cerr := srv.Close(); err == nil {
			err = cerr
		}
		return err
	}
	err := stop(ls.srv, ls.served)
	for _, in := range ls.others {
		if serr := stop(in.srv, in.served); err == nil {
			err = serr
		}
	}
	ls.srv, ls.others = nil, nil
	return err
}

// enrolCode returns a one-time enrolment code for unit.
func (ls *loadServer) enrolCode(ctx context.Context, unit uuid.UUID) (string, error) {
	code, err := ls.srv.NewEnrolCode(ctx, unit, "bryggaload")
	if err != nil {
		return "", err
	}
	return code.Code, nil
}

// device is a tablet at the protocol level: an enrolled device id with an
// access token, its clock and its mutation numbering.
type device struct {
	id    uuid.UUID
	ref   unitRef
	token string
	clock *hlc.Clock
	seq   int64
	// inst is the instance the device syncs with, an index of the load
	// server's urls.
	inst int
}

// enrol enrols a new device for the unit u, in process.
func (ls *loadServer) enrol(ctx context.Context, u unitRef) (*device, error) {
	code, err := ls.enrolCode(ctx, u.unit)
	if err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	proof, err := server.SignEnrolProof(priv, code, time.Now())
	if err != nil {
		return nil, err
	}
	e, err := ls.srv.Enrol(ctx, code, pub, proof)
	if err != nil {
		return nil, err
	}
	return &device{id: e.DeviceID, ref: u, token: e.AccessToken, clock: hlc.NewClock(time.Now, 0), inst: ls.nextInstance()}, nil
}

// fakeDevice is a device no server knows, for the baselines and the wire
// size, whose records look like an enrolled device's.
func fakeDevice() *device {
	return &device{id: uuid.Must(uuid.NewV7()),
		ref:   unitRef{unit: uuid.Must(uuid.NewV7()), staff: uuid.Must(uuid.NewV7())},
		clock: hlc.NewClock(time.Now, 0)}
}

// batch makes n mutations as a tablet makes them: contacts, each followed
// by a syringe exchange at it, an hour ago.
func (d *device) batch(n int) (*wire.PushRequest, error) {
	req := &wire.PushRequest{Versions: wire.Current(), Mutations: make([]wire.Mutation, 0, n)}
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	var contact uuid.UUID
	for i := range n {
		id := uuid.Must(uuid.NewV7())
		h := schema.Header{ID: id, UnitID: d.ref.unit, DeviceID: d.id, StaffID: d.ref.staff, OccurredAt: at}
		var rec schema.Record
		if i%2 == 0 {
			contact = id
			rec = &schema.Contact{Header: h, Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380"}
		} else {
			rec = &schema.SyringeExchange{Header: h, ContactID: contact, SyringesOut: 20, NeedlesOut: 20, SyringesReturned: 12}
		}
		fields, err := encodeFields(rec)
		if err != nil {
			return nil, err
		}
		d.seq++
		req.Mutations = append(req.Mutations, wire.Mutation{Seq: d.seq, Kind: rec.Kind(), ID: id, Version: d.clock.Now(), Fields: fields})
	}
	req.Clock = d.clock.Now()
	return req, nil
}

// encodeFields encodes every field of rec as a mutation carries them.
func encodeFields(rec schema.Record) (json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	for _, f := range rec.Fields() {
		v, err := f.MarshalJSON()
		if err != nil {
			return nil, err
		}
		obj[f.Name] = v
	}
	return json.Marshal(obj)
}

// body is an encoded request body.
type body struct {
	data []byte
	gzip bool
	rows int
}

// encodeBody encodes v as JSON, gzip-compressed if compress is set.
func encodeBody(v any, compress bool, rows int) (body, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return body{}, err
	}
	if !compress {
		return body{data: data, rows: rows}, nil
	}
	z, err := gzipBytes(data)
	return body{data: z, gzip: true, rows: rows}, err
}

// gzipBytes compresses data at gzip's fastest level, as the SDK does.
func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// pushBodies makes the gzip-compressed 1000-mutation push bodies of rows
// records of d, contacts and exchanges in pairs.
func (d *device) pushBodies(rows int) ([]body, error) {
	var out []body
	for left := rows; left > 0; {
		n := min(left, batchSize)
		req, err := d.batch(n)
		if err != nil {
			return nil, err
		}
		b, err := encodeBody(req, true, n)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
		left -= n
	}
	return out, nil
}

// split divides rows among n parts in even counts, so that no contact is
// split from its exchange; the first parts take what is left over.
func split(rows, n int) []int {
	pairs := (rows + 1) / 2
	out := make([]int, n)
	for i := range out {
		out[i] = pairs / n * 2
		if i < pairs%n {
			out[i] += 2
		}
	}
	return out
}

// spread divides n among parts, the first parts taking what is left over.
func spread(n, parts int) []int {
	out := make([]int, parts)
	for i := range out {
		out[i] = n / parts
		if i < n%parts {
			out[i]++
		}
	}
	return out
}

// loopbackClient returns an HTTP client for the loopback server with at
// most conns connections, all kept alive between requests.
func loopbackClient(conns int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxConnsPerHost:     conns,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Timeout: 5 * time.Minute, Transport: tr}
}

// closeClient closes the client's idle connections.
func closeClient(c *http.Client) {
	c.CloseIdleConnections()
}

// timedTransport adds up how long the requests it carries take, from
// sending each to the end of its answer's body: the time a client spends
// waiting on the server and the network.
type timedTransport struct {
	base  http.RoundTripper
	total atomic.Int64 // nanoseconds
}

// RoundTrip sends req and times it.
func (t *timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		t.total.Add(int64(time.Since(start)))
		return nil, err
	}
	resp.Body = &timedBody{ReadCloser: resp.Body, start: start, t: t}
	return resp, nil
}

// CloseIdleConnections closes the idle connections of the transport below.
func (t *timedTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// elapsed returns the time counted so far.
func (t *timedTransport) elapsed() time.Duration { return time.Duration(t.total.Load()) }

// timedBody stops its request's clock at the end of the body, or at Close
// if that comes first.
type timedBody struct {
	io.ReadCloser
	start time.Time
	t     *timedTransport
	once  sync.Once
}

func (b *timedBody) stop() {
	b.once.Do(func() { b.t.total.Add(int64(time.Since(b.start))) })
}

// Read reads the body and stops the clock at its end.
func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.stop()
	}
	return n, err
}

// Close closes the body and stops the clock.
func (b *timedBody) Close() error {
	b.stop()
	return b.ReadCloser.Close()
}

// timing is how long a request took: from when it was issued, and from
// when it had a connection.
type timing struct {
	issued, connected time.Duration
}

// call makes one request and hands the answer's body to decode (if not
// nil). An answer other than 200 is an error.
func call(ctx context.Context, client *http.Client, method, u, token string, b *body, decode func(io.Reader) error) (timing, error) {
	var gotConn atomic.Int64
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { gotConn.Store(time.Now().UnixNano()) },
	})
	var r io.Reader
	if b != nil {
		r = bytes.NewReader(b.data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return timing{}, err
	}
	if b != nil {
		req.Header.Set("Content-Type", "application/json")
		if b.gzip {
			req.Header.Set("Content-Encoding", "gzip")
		}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return timing{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return timing{}, fmt.Errorf("%s %s: status %d: %s", method, pathOf(u), resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	if decode != nil {
		if err := decode(resp.Body); err != nil {
			return timing{}, fmt.Errorf("%s %s: %w", method, pathOf(u), err)
		}
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return timing{}, err
	}
	end := time.Now()
	connected := start
	if ns := gotConn.Load(); ns != 0 {
		connected = time.Unix(0, ns)
	}
	return timing{issued: end.Sub(start), connected: end.Sub(connected)}, nil
}

// pathOf returns the path of a URL, for error messages.
func pathOf(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Path
	}
	return u
}

// push sends one push body as d and checks that every mutation applied.
func (ls *loadServer) push(ctx context.Context, client *http.Client, d *device, b *body) (timing, error) {
	var resp *wire.PushResponse
	t, err := call(ctx, client, http.MethodPost, ls.urls[d.inst]+"/v1/sync/push", d.token, b, func(r io.Reader) error {
		var err error
		resp, err = wire.DecodePushResponse(r)
		return err
	})
	if err != nil {
		return t, err
	}
	if len(resp.Results) != b.rows {
		return t, fmt.Errorf("push: %d results for %d mutations", len(resp.Results), b.rows)
	}
	for _, res := range resp.Results {
		if res.Status != wire.Applied {
			return t, fmt.Errorf("push: mutation %d: %s %v", res.Seq, res.Status, res.Error)
		}
	}
	return t, nil
}

// pull fetches one page of d's changes after cursor.
func (ls *loadServer) pull(ctx context.Context, client *http.Client, d *device, cursor string, limit int) (*wire.PullResponse, timing, error) {
	var resp *wire.PullResponse
	t, err := call(ctx, client, http.MethodGet, ls.urls[d.inst]+wire.PullPath(cursor, limit), d.token, nil, func(r io.Reader) error {
		var err error
		resp, err = wire.DecodePullResponse(r)
		return err
	})
	return resp, t, err
}

// pushAll pushes each device's bodies in order, the devices at once, and
// returns how long it took.
func (ls *loadServer) pushAll(ctx context.Context, client *http.Client, devs []*device, bodies [][]body) (time.Duration, error) {
	start := time.Now()
	err := parallel(ctx, len(devs), func(ctx context.Context, i int) error {
		for j := range bodies[i] {
			if _, err := ls.push(ctx, client, devs[i], &bodies[i][j]); err != nil {
				return err
			}
		}
		return nil
	})
	return time.Since(start), err
}

// loaders is how many devices push at once: the push scenario's clients.
const loaders = 4

// preload fills the first unit of the server with rows records, pushed by
// four devices over HTTP.
func (ls *loadServer) preload(ctx context.Context, rows int) error {
	client := loopbackClient(loaders)
	defer closeClient(client)
	counts := split(rows, loaders)
	return parallel(ctx, loaders, func(ctx context.Context, i int) error {
		if counts[i] == 0 {
			return nil
		}
		d, err := ls.enrol(ctx, ls.units[0])
		if err != nil {
			return err
		}
		for left := counts[i]; left > 0; {
			n := min(left, batchSize)
			req, err := d.batch(n)
			if err != nil {
				return err
			}
			b, err := encodeBody(req, true, n)
			if err != nil {
				return err
			}
			if _, err := ls.push(ctx, client, d, &b); err != nil {
				return err
			}
			left -= n
		}
		return nil
	})
}

// parallel runs fn(i) for i in [0, n) at once and returns the first error;
// the first error cancels the others' context.
func parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if errs[i] = fn(ctx, i); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	// Report the error that came first, not a cancellation it caused.
	var canceled error
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled):
			if canceled == nil {
				canceled = err
			}
		default:
			return err
		}
	}
	return canceled
}

// procStatus returns a field of /proc/PID/status in bytes, such as VmRSS
// or VmHWM.
func procStatus(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != field {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: unexpected %q", field, v)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		return kb << 10, err
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
