package brygga_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/wire"
)

// TestEnrolProofRetries: every enrolment request carries a new proof of
// the device's key, so the retries a bad network forces still end in one
// device: an enrolment request sent twice by the network (the second
// answered assertion_replayed, the answer the tablet gets), an answer
// lost and the enrolment sent again, and a tablet whose clock is days off
// (its first proof answered clock_skew).
func TestEnrolProofRetries(t *testing.T) {
	ctx := context.Background()
	srv, base, now, unit := startClockedServer(t)
	staff, _ := srv.AddStaff(ctx, unit.ID, schema.RoleOutreachWorker)
	fp, _, _ := startFaultProxy(t, base, 1)
	var twice, lose, skews atomic.Int32
	proxy := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == wire.EnrolPath {
			body, _ := io.ReadAll(req.Body)
			if twice.Add(-1) >= 0 {
				fp.forward(req, body) // the first answer goes nowhere
			}
			if lose.Add(-1) >= 0 {
				fp.forward(req, body) // enrolled, the answer is lost
				http.Error(w, "cut", http.StatusBadGateway)
				return
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec := &statusRecorder{ResponseWriter: w}
		fp.ServeHTTP(rec, req)
		if req.URL.Path == wire.EnrolPath && rec.status == http.StatusUnauthorized {
			skews.Add(1)
		}
	})}
	ln := listen(t)
	go proxy.Serve(ln)
	t.Cleanup(func() { proxy.Close() })
	via := "http://" + ln.Addr().String()

	for _, c := range []struct {
		name          string
		twice, lose   int32
		skew          time.Duration
		refusedAnswer int32 // 401 answers the tablet sees (replayed or clock_skew)
	}{
		{name: "sent twice", twice: 1, refusedAnswer: 1},
		{name: "answer lost twice", lose: 2},
		{name: "clock three days behind", skew: -72 * time.Hour, refusedAnswer: 1},
		{name: "clock four days ahead, sent twice", skew: 96 * time.Hour, twice: 1, refusedAnswer: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _ := srv.NewEnrolCode(ctx, unit.ID, "test")
			twice.Store(c.twice)
			lose.Store(c.lose)
			skews.Store(0)
			before, _ := srv.DevicesOf(ctx, uuid.Nil)
			path := filepath.Join(t.TempDir(), "t.db")
			tb, _ := brygga.Open(ctx, path, &brygga.Options{Now: func() time.Time { return now.Now().Add(c.skew) }})
			defer tb.Close()
			var err error
			for range c.lose + 1 {
				if err = tb.Enroll(ctx, via, code.Code); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("enrol: %v", err)
			}
			if n := skews.Load(); n != c.refusedAnswer {
				t.Errorf("%d refused enrolment answers, want %d", n, c.refusedAnswer)
			}
			after, _ := srv.DevicesOf(ctx, uuid.Nil)
			found := false
			for _, d := range after {
				found = found || d.ID == tb.DeviceID()
			}
			if len(after) != len(before)+1 || !found {
				t.Fatalf("%d devices before, %d after; the tablet is %s", len(before), len(after), tb.DeviceID())
			}
			if err := tb.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			tb.SetStaff(ctx, staff.ID)
			rec := contact(schema.SettingStreet)
			if err := tb.Add(ctx, rec); err != nil {
				t.Fatal(err)
			}
			if err := tb.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := srv.Record(ctx, schema.KindContact, rec.ID); err != nil {
				t.Error(err)
			}
		})
	}
}

// statusRecorder keeps the status of an answer it passes on.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
