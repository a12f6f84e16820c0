package brygga_test

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

// wireMeter counts the bytes of requests and answers as they cross the
// network (bodies as sent, compressed or not, and headers), by endpoint.
type wireMeter struct {
	mu    sync.Mutex
	bytes map[string]int64
}

func (m *wireMeter) add(path string, n int64) {
	m.mu.Lock()
	m.bytes[path] += n
	m.mu.Unlock()
}

func (m *wireMeter) get(path string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bytes[path]
}

func (m *wireMeter) reset() {
	m.mu.Lock()
	m.bytes = map[string]int64{}
	m.mu.Unlock()
}

func headerBytes(h http.Header) int64 {
	var n int64
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}

func (m *wireMeter) RoundTrip(req *http.Request) (*http.Response, error) {
	path := req.URL.Path
	// Asked for explicitly, a compressed answer reaches us as it was sent.
	req.Header.Set("Accept-Encoding", "gzip")
	m.add(path, int64(len(req.Method)+len(req.URL.RequestURI())+12)+headerBytes(req.Header)+max(req.ContentLength, 0))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	m.add(path, 16+headerBytes(resp.Header))
	body := &meteredBody{r: resp.Body, c: resp.Body, n: func(n int) { m.add(path, int64(n)) }}
	resp.Body = body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, err
		}
		resp.Body = &meteredBody{r: zr, c: body, n: func(int) {}}
		resp.Header.Del("Content-Encoding")
		resp.ContentLength = -1
	}
	return resp, nil
}

type meteredBody struct {
	r io.Reader
	c io.Closer
	n func(int)
}

func (b *meteredBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n(n)
	return n, err
}

func (b *meteredBody) Close() error { return b.c.Close() }

// TestOwnRecordsCostOnePush: a device that syncs records it made itself
// is not sent them back: the whole sync costs at most 1.1 times the bytes
// of its pushes; a colleague's device pulls every one of them.
func TestOwnRecordsCostOnePush(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	meter := &wireMeter{bytes: map[string]int64{}}
	a := r.deviceWith(r.url(), r.team, r.teamStaf, &brygga.Options{HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: meter}})
	b := r.device(r.url(), r.team, r.teamStaf)
	const n = 3000
	ids := make([]uuid.UUID, 0, n)
	for i := range n {
		x := contact(schema.SettingStreet)
		if i%3 == 0 {
			x.Setting = schema.SettingFixedSite
		}
		if err := a.Add(ctx, x); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, x.ID)
	}
	meter.reset()
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	push, pull := meter.get("/v1/sync/push"), meter.get("/v1/sync/pull")
	total := int64(0)
	for path := range meter.bytes {
		total += meter.get(path)
	}
	t.Logf("%d records: pushes %d bytes, pulls %d bytes, the whole sync %d bytes (%.3fx the pushes)", n, push, pull, total, float64(total)/float64(push))
	if push == 0 || float64(total) > 1.1*float64(push) {
		t.Errorf("the sync of %d records of the device's own took %d bytes, its pushes %d: more than 1.1x", n, total, push)
	}
	if st, _ := a.Status(ctx); st.Pending != 0 {
		t.Errorf("%d records still queued", st.Pending)
	}
	if got := r.count(t, schema.KindContact, ids); got != n {
		t.Errorf("the server holds %d of %d records", got, n)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := b.Get(ctx, schema.KindContact, id); err != nil {
			t.Fatalf("the colleague's device lacks %s: %v", id, err)
		}
	}
	// A correction made by the colleague reaches the device.
	if err := b.Void(ctx, schema.KindContact, ids[7]); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if rec, err := a.Get(ctx, schema.KindContact, ids[7]); err != nil || !rec.(*schema.Contact).Voided {
		t.Errorf("the colleague's correction did not reach the device: %+v, %v", rec, err)
	}
}
