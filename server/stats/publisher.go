package stats

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrBuilding is returned by Publisher.Publication when there is no
// publication yet and the first one is still being built after the wait.
var ErrBuilding = errors.New("stats: the publication is being built")

// DefaultPublishWait is how long a request waits for the build of the
// current publication before it is answered with the last one.
const DefaultPublishWait = 10 * time.Second

// DefaultKickDelay is how long after a write a background build starts:
// writes within it are built together.
const DefaultKickDelay = 5 * time.Second

// Publisher keeps the publication of a region's records and builds it
// again, in the background, when the records or the status of a period
// change. A request waits for the build of the current records at most
// Wait; past that it is answered with the last publication built, marked
// Stale, while the build goes on. It is safe for concurrent use; builds
// are serialised. The zero value is ready to use; Close stops it.
type Publisher struct {
	// Wait bounds how long Publication waits for a build
	// (DefaultPublishWait if 0). Set it before use, or with SetTiming.
	Wait time.Duration
	// Delay is how long after Kick a background build starts
	// (DefaultKickDelay if 0). Set it before use, or with SetTiming.
	Delay time.Duration

	mu       sync.Mutex
	pub      *Publication
	building chan struct{} // closed when the build under way ends; nil if none
	err      error         // the last build's error
	kick     *time.Timer
	keys     keyCache        // the records' keys, kept between builds
	base     context.Context // the builds' context: cancelled by Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closed   bool
	asked    bool // Publication has been called: Kick builds only then
}

// Publication returns the publication of the records in db as of now,
// with threshold k: the one kept if the records have not changed since it
// was built and every period has the status it had; else the one a build
// of the current records gives within Wait; else the last one built,
// with Stale set. It returns ErrBuilding if none has been built yet, and
// the build's error if it failed. ctx bounds the wait, not the build.
func (pb *Publisher) Publication(ctx context.Context, db DB, now time.Time, k int64) (*Publication, error) {
	if k < 2 {
		k = DefaultK
	}
	pb.mu.Lock()
	wait := pb.Wait
	pb.asked = true
	pb.mu.Unlock()
	if wait <= 0 {
		wait = DefaultPublishWait
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for range 10 { // records changed during each build: a bounded number of tries
		pb.mu.Lock()
		pub := pb.pub
		pb.mu.Unlock()
		if pub != nil && pub.K == k {
			same, err := pub.current(ctx, db, now)
			if err != nil {
				return nil, err
			}
			if same {
				return pub, nil
			}
		}
		pb.mu.Lock()
		done := pb.start(db, func() time.Time { return now }, k)
		pb.mu.Unlock()
		select {
		case <-done:
			pb.mu.Lock()
			err := pb.err
			pb.mu.Unlock()
			if err != nil {
				return nil, err
			}
			continue
		case <-timer.C:
		case <-ctx.Done():
		}
		break
	}
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if pb.pub == nil || pb.pub.K != k {
		return nil, ErrBuilding
	}
	stale := *pb.pub
	stale.Stale = true
	return &stale, nil
}

// SetTiming sets Wait and Delay while the publisher is in use, and stops
// a background build that is due (not one under way).
func (pb *Publisher) SetTiming(wait, delay time.Duration) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	pb.Wait, pb.Delay = wait, delay
	if pb.kick != nil {
		pb.kick.Stop()
		pb.kick = nil
	}
}

// Kick says the records have changed: a build starts in the background
// Delay later, unless one is under way or already due, or no publication
// has been asked for yet (a server whose reports nobody reads builds
// none).
func (pb *Publisher) Kick(db DB, now func() time.Time, k int64) {
	if k < 2 {
		k = DefaultK
	}
	pb.mu.Lock()
	defer pb.mu.Unlock()
	delay := pb.Delay
	if delay <= 0 {
		delay = DefaultKickDelay
	}
	if pb.closed || pb.kick != nil || !pb.asked {
		return
	}
	pb.kick = time.AfterFunc(delay, func() {
		pb.mu.Lock()
		defer pb.mu.Unlock()
		pb.kick = nil
		pb.start(db, now, k)
	})
}

// start starts a build unless one is under way, and returns the channel
// closed when the build under way ends. pb.mu is held.
func (pb *Publisher) start(db DB, now func() time.Time, k int64) <-chan struct{} {
	if pb.building != nil {
		return pb.building
	}
	done := make(chan struct{})
	if pb.closed {
		close(done)
		pb.err = ErrBuilding
		return done
	}
	if pb.base == nil {
		pb.base, pb.cancel = context.WithCancel(context.Background())
	}
	pb.building = done
	pb.wg.Add(1)
	go func() {
		defer pb.wg.Done()
		pub, err := pb.build(pb.base, db, now(), k)
		pb.mu.Lock()
		if err == nil {
			pb.pub = pub
		}
		pb.err = err
		pb.building = nil
		pb.mu.Unlock()
		close(done)
	}()
	return done
}

// build builds the publication unless the one kept still holds.
func (pb *Publisher) build(ctx context.Context, db DB, now time.Time, k int64) (*Publication, error) {
	pb.mu.Lock()
	pub := pb.pub
	pb.mu.Unlock()
	if pub != nil && pub.K == k {
		if same, err := pub.current(ctx, db, now); err != nil || same {
			return pub, err
		}
	}
	return buildPublication(ctx, db, now, k, &pb.keys)
}

// Close stops the background builds: it cancels the one under way and
// waits for it to end. Publication returns ErrBuilding afterwards unless
// the last publication still holds.
func (pb *Publisher) Close() {
	pb.mu.Lock()
	pb.closed = true
	if pb.kick != nil {
		pb.kick.Stop()
		pb.kick = nil
	}
	if pb.cancel != nil {
		pb.cancel()
	}
	pb.mu.Unlock()
	pb.wg.Wait()
}
