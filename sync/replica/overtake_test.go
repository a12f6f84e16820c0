package replica_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// overtakeServer opens a server with a device of unit A, and makes n
// pushes of size contacts of the device each, numbered on from 1.
func overtakeServer(t *testing.T, n, size int) (*replica.ServerStore, world, uuid.UUID, []*wire.PushRequest) {
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	dev := newID(t)
	if _, err := s.RegisterDevice(context.Background(), dev, w.unitA); err != nil {
		t.Fatal(err)
	}
	hc := hlc.NewClock(clock.Now, 0)
	reqs := make([]*wire.PushRequest, n)
	seq := int64(0)
	for i := range reqs {
		req := &wire.PushRequest{Versions: wire.Current()}
		for range size {
			seq++
			req.Mutations = append(req.Mutations, mutation(t, seq, newContact(t, w, dev, clock.Now().Add(-time.Hour)), hc.Now()))
		}
		reqs[i] = req
	}
	return s, w, dev, reqs
}

type pushOutcome struct {
	resp *wire.PushResponse
	err  error
}

func pushAsync(ctx context.Context, s *replica.ServerStore, dev uuid.UUID, req *wire.PushRequest) <-chan pushOutcome {
	out := make(chan pushOutcome, 1)
	go func() {
		resp, err := s.Push(ctx, dev, req)
		out <- pushOutcome{resp, err}
	}()
	return out
}

func allApplied(t *testing.T, name string, o pushOutcome) {
	t.Helper()
	if o.err != nil {
		t.Fatalf("%s: %v", name, o.err)
	}
	for _, r := range o.resp.Results {
		if r.Status != wire.Applied {
			t.Fatalf("%s: mutation %d %s %v", name, r.Seq, r.Status, r.Error)
		}
	}
}

// A device's push that reaches the server before the one numbered before
// it (the SDK keeps several in flight, each on a connection of its own)
// waits for that one to arrive and be applied, rather than being refused
// and sent again with everything after it.
func TestPushWaitsForTheOneBeforeToArrive(t *testing.T) {
	defer replica.SetPushWaits(time.Minute, time.Minute, time.Minute)()
	s, w, dev, reqs := overtakeServer(t, 3, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	third := pushAsync(ctx, s, dev, reqs[2])
	time.Sleep(50 * time.Millisecond) // let it find its gap: it must not be refused for it
	second := pushAsync(ctx, s, dev, reqs[1])
	time.Sleep(50 * time.Millisecond)
	resp, err := s.Push(ctx, dev, reqs[0])
	allApplied(t, "first push", pushOutcome{resp, err})
	allApplied(t, "second push", <-second)
	allApplied(t, "third push", <-third)
	if ctx.Err() != nil {
		t.Fatal("the pushes waited out the test's deadline")
	}
	if n := scopeCount(t, s, w.unitA); n != 60 {
		t.Fatalf("%d records stored, want 60", n)
	}
}

// A push waiting for the one numbered before it stops waiting when that one
// leaves refused (its own predecessor never came): the device, which waits
// for every push in flight before it sends again, is answered at once
// rather than after the overtake wait.
func TestPushStopsWaitingWhenTheOneBeforeLeaves(t *testing.T) {
	defer replica.SetPushWaits(50*time.Millisecond, 10*time.Millisecond, time.Hour)()
	s, w, dev, reqs := overtakeServer(t, 3, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The first push is lost; the second waits for it a while, the third
	// for the second.
	second := pushAsync(ctx, s, dev, reqs[1])
	time.Sleep(20 * time.Millisecond)
	third := pushAsync(ctx, s, dev, reqs[2])
	for name, ch := range map[string]<-chan pushOutcome{"second": second, "third": third} {
		o := <-ch
		var we *wire.Error
		if !errors.As(o.err, &we) || we.Code != wire.CodeSeqGap || we.Expected != 1 {
			t.Fatalf("%s push: %v, want seq_gap expecting 1", name, o.err)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("a refused push was answered only at the test's deadline: it waited for one that had left")
	}
	// Sent again in order, all are applied once.
	for i, req := range reqs {
		resp, err := s.Push(ctx, dev, req)
		allApplied(t, []string{"first", "second", "third"}[i]+" push sent again", pushOutcome{resp, err})
	}
	if n := scopeCount(t, s, w.unitA); n != 30 {
		t.Fatalf("%d records stored, want 30", n)
	}
}

// scopeCount returns how many contacts the unit's scope holds.
func scopeCount(t *testing.T, s *replica.ServerStore, unit uuid.UUID) int {
	t.Helper()
	rows, err := s.ScopeRows(context.Background(), unit)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rows {
		if r.Kind == schema.KindContact {
			n++
		}
	}
	return n
}
