package brygga_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/wire"
)

// TestEnrollAfterLostAnswer: the server enrols the tablet but its answer
// is lost; the tablet enrols again with the same code, in the same process
// and after a restart, and is the same device. No second device, no burnt
// code.
func TestEnrollAfterLostAnswer(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	cut, via := startCutter(t, r.url())
	path := filepath.Join(t.TempDir(), "tablet.db")
	code, _ := r.srv.NewEnrolCode(ctx, r.team.ID, "test")

	cut.path.Store(wire.EnrolPath)
	cut.cut.Store(2)
	c, err := brygga.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Enroll(ctx, via, code.Code); err == nil {
		t.Fatal("enrolment succeeded although its answer was lost")
	}
	if c.Enrolled() {
		t.Fatal("enrolled without an answer")
	}
	// The app is restarted, and the answer is lost again.
	c.Close()
	if c, err = brygga.Open(ctx, path, nil); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Enroll(ctx, via, code.Code); err == nil {
		t.Fatal("enrolment succeeded although its answer was lost")
	}
	// The third time, typed in lower case.
	if err := c.Enroll(ctx, via, strings.ToLower(code.Code)); err != nil {
		t.Fatalf("enrolment with the same code after lost answers: %v", err)
	}
	devs, _ := r.srv.DevicesOf(ctx, uuid.Nil)
	if len(devs) != 1 || devs[0].ID != c.DeviceID() {
		t.Fatalf("server devices %+v, tablet %s", devs, c.DeviceID())
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c.SetStaff(ctx, r.teamStaf.ID)
	rec := contact(schema.SettingStreet)
	c.Add(ctx, rec)
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.srv.Record(ctx, schema.KindContact, rec.ID); err != nil {
		t.Error(err)
	}
	// Once enrolled, the same code again is the same enrolment; a new
	// one is refused.
	if err := c.Enroll(ctx, via, code.Code); err != nil {
		t.Errorf("the same code once enrolled: %v", err)
	}
	other, _ := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
	if err := c.Enroll(ctx, via, other.Code); !errors.Is(err, brygga.ErrAlreadyEnrolled) {
		t.Errorf("another code once enrolled: %v", err)
	}

	// Another tablet that loses its answer and then is given a new code:
	// it enrols with the new code (with a new key).
	cut.cut.Store(1)
	c2, _ := brygga.Open(ctx, filepath.Join(t.TempDir(), "t2.db"), nil)
	defer c2.Close()
	lost, _ := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
	if err := c2.Enroll(ctx, via, lost.Code); err == nil {
		t.Fatal("enrolment succeeded although its answer was lost")
	}
	fresh, _ := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
	if err := c2.Enroll(ctx, via, fresh.Code); err != nil {
		t.Fatalf("enrolment with a new code: %v", err)
	}
	if err := c2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// skewCounter is a proxy that counts the clock_skew answers to token
// requests, and can take the server's own time header off answers.
type skewCounter struct {
	skews atomic.Int32
	url   string
}

func startSkewCounter(t *testing.T, target string, strip bool) *skewCounter {
	sc := &skewCounter{}
	u, _ := url.Parse(target)
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(resp *http.Response) error {
		if strip {
			resp.Header.Del(wire.HeaderServerTime)
		}
		if resp.Request.URL.Path == wire.TokenPath && resp.StatusCode == 401 {
			body, _ := io.ReadAll(resp.Body)
			resp.Body = io.NopCloser(bytes.NewReader(body))
			if bytes.Contains(body, []byte(wire.CodeClockSkew)) {
				sc.skews.Add(1)
			}
		}
		return nil
	}
	ln := listen(t)
	srv := &http.Server{Handler: p}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	sc.url = "http://" + ln.Addr().String()
	return sc
}

// TestClocksDaysOff: tablets whose clocks are three days ahead or behind
// get access tokens: their assertions are made on the server's clock as
// they learned it. When the clock jumps by six days after they learned
// it, the server refuses the next assertion as clock_skew, the tablet
// learns the server's time from that answer and tries once more, and the
// sync works.
func TestClocksDaysOff(t *testing.T) {
	ctx := context.Background()
	for _, days := range []int{3, -3} {
		srv, base, now, unit := startClockedServer(t)
		sc := startSkewCounter(t, base, false)
		staff, _ := srv.AddStaff(ctx, unit.ID, schema.RoleOutreachWorker)
		var skew atomic.Int64
		skew.Store(int64(time.Duration(days) * 24 * time.Hour))
		devNow := func() time.Time { return now.Now().Add(time.Duration(skew.Load())) }
		code, _ := srv.NewEnrolCode(ctx, unit.ID, "test")
		c, _ := brygga.Open(ctx, filepath.Join(t.TempDir(), "t.db"), &brygga.Options{Now: devNow})
		defer c.Close()
		if err := c.Enroll(ctx, sc.url, code.Code); err != nil {
			t.Fatalf("%+d days: %v", days, err)
		}
		if err := c.Sync(ctx); err != nil {
			t.Fatalf("%+d days: %v", days, err)
		}
		c.SetStaff(ctx, staff.ID)
		rec := contact(schema.SettingStreet)
		if err := c.Add(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if dt := now.Now().Sub(rec.OccurredAt); dt.Abs() > time.Minute {
			t.Errorf("%+d days: recorded %v from the server's time", days, dt)
		}
		if n := sc.skews.Load(); n != 0 {
			t.Errorf("%+d days: %d clock_skew answers before the jump", days, n)
		}
		// Twenty minutes on (the access token has expired), and the
		// tablet's clock jumps by six days the other way.
		now.Add(20 * time.Minute)
		skew.Store(-skew.Load())
		if err := c.Sync(ctx); err != nil {
			t.Fatalf("%+d days: sync after the clock jumped: %v", days, err)
		}
		if _, err := srv.Record(ctx, schema.KindContact, rec.ID); err != nil {
			t.Errorf("%+d days: %v", days, err)
		}
		if n := sc.skews.Load(); n != 1 {
			t.Errorf("%+d days: %d clock_skew answers, want the one after the jump", days, n)
		}
	}
}

// TestClockSkewFromDate: behind a proxy that takes the server's own time
// header off, a tablet whose clock jumped three days learns the server's
// time from the Date header of the clock_skew answer.
func TestClockSkewFromDate(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	sc := startSkewCounter(t, r.url(), true)
	var skew atomic.Int64
	c := r.deviceWith(sc.url, r.team, r.teamStaf, &brygga.Options{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	rec := contact(schema.SettingStreet)
	c.Add(ctx, rec)
	skew.Store(int64(72 * time.Hour)) // the access token looks expired, and the clock is days ahead
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("sync after the clock jumped: %v", err)
	}
	if n := sc.skews.Load(); n != 1 {
		t.Errorf("%d clock_skew answers, want 1", n)
	}
	if _, err := r.srv.Record(ctx, schema.KindContact, rec.ID); err != nil {
		t.Error(err)
	}
}

// TestReplayedAssertionAnswer: a proxy sends a token request twice and
// hands the tablet the answer to the second, assertion_replayed; the
// tablet makes a new assertion at once, and syncs.
func TestReplayedAssertionAnswer(t *testing.T) {
	ctx := context.Background()
	srv, base, now, unit := startClockedServer(t)
	fp, _, _ := startFaultProxy(t, base, 1)
	var twice atomic.Int32
	dup := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == wire.TokenPath && twice.Add(-1) >= 0 {
			body, _ := io.ReadAll(req.Body)
			fp.forward(req, body) // the first answer goes nowhere
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		fp.ServeHTTP(w, req)
	})}
	ln := listen(t)
	go dup.Serve(ln)
	t.Cleanup(func() { dup.Close() })
	staff, _ := srv.AddStaff(ctx, unit.ID, schema.RoleOutreachWorker)
	code, _ := srv.NewEnrolCode(ctx, unit.ID, "test")
	c, _ := brygga.Open(ctx, filepath.Join(t.TempDir(), "t.db"), &brygga.Options{Now: now.Now})
	defer c.Close()
	if err := c.Enroll(ctx, "http://"+ln.Addr().String(), code.Code); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c.SetStaff(ctx, staff.ID)
	rec := contact(schema.SettingStreet)
	c.Add(ctx, rec)
	now.Add(20 * time.Minute)
	twice.Store(1)
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Record(ctx, schema.KindContact, rec.ID); err != nil {
		t.Error(err)
	}
	replays := 0
	entries, _ := srv.Audit(ctx, 0, 1000)
	for _, e := range entries {
		if e.Action == "token" && e.Outcome == string(wire.CodeAssertionReplayed) {
			replays++
		}
	}
	if replays != 1 {
		t.Errorf("%d replayed assertions audited, want 1", replays)
	}
}

// TestConcurrentSyncsOneDevice: one device records and syncs from many
// goroutines at once, with contexts cancelled at random times; afterwards
// it syncs, and everything it recorded is on the server.
func TestConcurrentSyncsOneDevice(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	c := r.device(r.url(), r.team, r.teamStaf)
	var ids []uuid.UUID
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 6 {
				rec := contact(schema.SettingStreet)
				if err := c.Add(ctx, rec); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, rec.ID)
				mu.Unlock()
				cctx, cancel := context.WithTimeout(ctx, time.Duration(1+(g*7+i*13)%40)*time.Millisecond)
				c.Sync(cctx)
				cancel()
			}
		}()
	}
	wg.Wait()
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("sync after concurrent cancelled ones: %v", err)
	}
	if n := r.count(t, schema.KindContact, ids); n != len(ids) {
		t.Errorf("server holds %d of %d", n, len(ids))
	}
	if got, _ := c.Contacts(ctx, 10000); len(got) != len(ids) {
		t.Errorf("device holds %d of %d", len(got), len(ids))
	}
}

// TestServerClockAheadOfItsWall: a tablet whose clock is 90 seconds ahead
// pushes, and the server's hybrid logical clock follows it (within the
// two minutes it allows); another tablet learns the server's time from
// that clock, and its next assertion is still taken at once, without a
// clock_skew answer.
func TestServerClockAheadOfItsWall(t *testing.T) {
	ctx := context.Background()
	srv, base, now, unit := startClockedServer(t)
	sc := startSkewCounter(t, base, false)
	staff, _ := srv.AddStaff(ctx, unit.ID, schema.RoleOutreachWorker)
	open := func(ahead time.Duration) *brygga.Client {
		code, _ := srv.NewEnrolCode(ctx, unit.ID, "test")
		c, _ := brygga.Open(ctx, filepath.Join(t.TempDir(), "t.db"), &brygga.Options{Now: func() time.Time { return now.Now().Add(ahead) }})
		t.Cleanup(func() { c.Close() })
		if err := c.Enroll(ctx, sc.url, code.Code); err != nil {
			t.Fatal(err)
		}
		if err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		c.SetStaff(ctx, staff.ID)
		return c
	}
	fast, other := open(90*time.Second), open(0)
	fast.Add(ctx, contact(schema.SettingStreet))
	if err := fast.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	now.Add(20 * time.Minute) // the access token has expired
	rec := contact(schema.SettingStreet)
	other.Add(ctx, rec)
	if err := other.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := sc.skews.Load(); n != 0 {
		t.Errorf("%d clock_skew answers", n)
	}
	if _, err := srv.Record(ctx, schema.KindContact, rec.ID); err != nil {
		t.Error(err)
	}
}
