package brygga

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// Progress reports how far a sync is: in phase "push" Done of Total
// mutations are pushed; in phase "pull" Done of Total changes of the
// server's sequence are pulled, and Received is how many records this
// pull's pages carried so far (a change the device already holds, such as
// its own write, is passed over without being sent).
type Progress struct {
	Phase    string
	Done     int64
	Total    int64
	Received int64
}

func (c *Client) progress(p Progress) {
	if c.opts.OnProgress != nil {
		c.opts.OnProgress(p)
	}
}

// Sync pushes every queued mutation in batches, then pulls pages until the
// device is caught up. Interrupted, it resumes where it stopped on the next
// call: nothing is applied twice and nothing is lost. On a revoked answer it
// wipes the replica and returns ErrRevoked. A retired device records
// nothing more, sends what it holds, then wipes the replica and returns
// ErrRetired. After a restore of the server (its epoch changed) it first
// sends again every record it holds, then pulls from the start.
func (c *Client) Sync(ctx context.Context) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	err := c.sync(ctx)
	var ae *APIError
	if dev, derr := c.device(); derr == nil && (errors.As(err, &ae) && ae.Code == wire.CodeDeviceRetired || err == nil && dev.Sealed()) {
		err = c.retire(ctx, dev)
	}
	if errors.As(err, &ae) && ae.Code == wire.CodeDeviceRevoked {
		if werr := c.wipe(); werr != nil {
			err = fmt.Errorf("%w (wiping failed: %v)", ErrRevoked, werr)
		} else {
			err = ErrRevoked
		}
	}
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
	if dev, derr := c.device(); derr == nil {
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		dev.SetMeta(ctx, metaLastError, msg) // best effort: the sync's own error is what matters
	}
	return err
}

func (c *Client) sync(ctx context.Context) error {
	dev, err := c.device()
	if err != nil {
		return err
	}
	if dev.Sealed() { // retired: what it holds goes out, nothing comes in
		return nil
	}
	if err := c.healIfNeeded(ctx, dev); err != nil {
		return err
	}
	if err := c.pushAll(ctx, dev); err != nil {
		return err
	}
	if err := c.healIfNeeded(ctx, dev); err != nil {
		return err
	}

	// Pull. While a page is applied, the next one is already on its way:
	// the server and the network work while the device writes.
	err = c.pullAll(ctx, dev)
	if errors.Is(err, errEpochChanged) || isRestored(err) {
		if err := c.heal(ctx, dev); err != nil {
			return err
		}
		err = c.pullAll(ctx, dev)
	}
	if err != nil {
		return err
	}
	now := c.now()
	if err := dev.SetMeta(ctx, metaLastSync, now.UTC().Format(time.RFC3339Nano)); err != nil {
		return err
	}
	// Retention: at most once a day, as it reads every record table.
	last, _ := dev.Meta(ctx, metaLastPurge)
	if t, err := time.Parse(time.RFC3339Nano, last); err == nil && now.Sub(t) < 24*time.Hour {
		return nil
	}
	if days, _ := dev.Meta(ctx, metaRetention); days != "" {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			if _, err := dev.Purge(ctx, now.AddDate(0, 0, -n)); err != nil {
				return err
			}
		}
	}
	return dev.SetMeta(ctx, metaLastPurge, now.UTC().Format(time.RFC3339Nano))
}

// pushDepth is how many push batches are in flight at once: while the
// server applies one, the next is read, sent and decoded.
const pushDepth = 3

// pushCall is a push batch in flight.
type pushCall struct {
	batch *replica.PushBatch
	// lead says no batch before it was in flight when it was sent: an
	// answer refusing it speaks of the queue, not of a batch that
	// overtook the one before it.
	lead bool
	done chan struct{}
	resp wire.PushResponse
	err  error
}

// pushEncoder is what a push is compressed and answered with: its
// compressor and the array its answer is read into. A sync keeps them
// from one push to the next (a sync.Pool drops them at each garbage
// collection, which a long sync brings often, and a compressor costs
// hundreds of kilobytes to make).
type pushEncoder struct {
	zw     *gzip.Writer
	answer []byte
}

// send compresses the call's batch (encoded as the outbox was read,
// replica.Device.NextPushBody), sends it and reads the answer
// (wire.ParsePushResponse), with an encoder from encoders, to which it
// returns it.
func (c *Client) send(ctx context.Context, call *pushCall, encoders chan *pushEncoder) {
	defer close(call.done)
	var e *pushEncoder
	select {
	case e = <-encoders:
	default:
		e = &pushEncoder{zw: newGzipWriter()}
	}
	defer func() {
		select {
		case encoders <- e:
		default:
		}
	}()
	body := compressBody(call.batch.Body, e.zw)
	resp, err := c.authedOpen(ctx, "POST", "/v1/sync/push", body)
	if err != nil {
		call.err = err
		return
	}
	e.answer, call.err = readPushAnswer(resp, e.answer, &call.resp)
}

// pushAll pushes every queued mutation in batches, up to pushDepth of them
// in flight, whose answers it takes in order. A batch sent while one
// before it was in flight that fails (it overtook that one and was
// answered seq_gap, or the network failed) is sent again once those before
// it are answered; the server's numbering keeps every mutation applied
// once. An answer of another epoch of the server than the replica's (a
// restored server) has the replica send its records again first (heal),
// which also tells the server which mutation numbers it acknowledged
// before, so that a push refused with seq_gap below the queue's first
// number (the restored server has forgotten the numbers) goes through
// after it.
func (c *Client) pushAll(ctx context.Context, dev *replica.Device) error {
	pending, err := dev.Pending(ctx)
	if err != nil {
		return err
	}
	var pushed int64
	c.progress(Progress{Phase: "push", Done: 0, Total: int64(pending)})
	pctx, cancel := context.WithCancel(ctx)
	encoders := make(chan *pushEncoder, pushDepth)
	var queue []*pushCall
	var after int64 // the last mutation number sent
	// settle waits for the batches in flight and drops their answers:
	// their mutations stay queued, and are sent again.
	settle := func() {
		for _, call := range queue {
			<-call.done
		}
		queue, after = nil, 0
	}
	defer func() {
		cancel()
		settle()
	}()
	// fill sends batches until pushDepth are in flight or none is left.
	fill := func() error {
		for len(queue) < pushDepth {
			batch, err := dev.NextPushBody(ctx, after, c.opts.PushBatch)
			if err != nil {
				return err
			}
			if batch == nil {
				break
			}
			call := &pushCall{batch: batch, lead: len(queue) == 0, done: make(chan struct{})}
			go c.send(pctx, call, encoders)
			queue = append(queue, call)
			after = batch.Last
		}
		return nil
	}
	for healed := 0; ; {
		if err := fill(); err != nil {
			return err
		}
		if len(queue) == 0 {
			return nil
		}
		call := queue[0]
		<-call.done
		queue = queue[1:]
		batch, resp, err := call.batch, &call.resp, call.err
		if err != nil && !call.lead && ctx.Err() == nil {
			settle()
			continue
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == wire.CodeSeqGap {
			settle()
			forgotten := ae.Expected <= batch.First-1
			if need, herr := c.needsHeal(ctx, dev); herr != nil {
				return herr
			} else if (need || forgotten) && healed < 3 {
				healed++
				if err := c.heal(ctx, dev); err != nil {
					return err
				}
				continue
			}
			if forgotten {
				// Healing did not bring the server's numbering up to the
				// queue's: stop rather than ask again and again.
				return fmt.Errorf("push: the server expects mutation %d, the queue starts at %d: %w", ae.Expected, batch.First, err)
			}
			if err := dev.SkipTo(ctx, ae.Expected); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
		// The next batch is sent before this answer is taken: the server
		// applies it meanwhile, rather than wait for the device (answers
		// often come back together, a group commit's). The answer is
		// taken even if that fails.
		ferr := fill()
		c.noteServerClock(ctx, resp.Clock)
		if err := dev.AcceptPush(ctx, resp); err != nil {
			return err
		}
		if ferr != nil {
			return ferr
		}
		pushed += int64(len(resp.Results))
		c.progress(Progress{Phase: "push", Done: min(pushed, int64(pending)), Total: int64(pending)})
		if need, err := c.needsHeal(ctx, dev); err != nil {
			return err
		} else if need && healed < 3 {
			settle()
			healed++
			if err := c.heal(ctx, dev); err != nil {
				return err
			}
		}
	}
}

// loop is the background sync loop.
type loop struct {
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs a background loop that syncs SyncDelay after local writes,
// every SyncInterval, and at SyncNow; after a failure it retries with
// exponential backoff and jitter, up to the interval. Stop ends it.
func (c *Client) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loop != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &loop{kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	c.loop = l
	go c.run(ctx, l)
}

// Stop ends the background loop and waits for a sync in progress to end.
func (c *Client) Stop() {
	c.mu.Lock()
	l := c.loop
	c.loop = nil
	c.mu.Unlock()
	if l != nil {
		l.cancel()
		<-l.done
	}
}

// SyncNow asks the background loop to sync at once, as when the app sees
// the network come back. Without a loop it does nothing.
func (c *Client) SyncNow() {
	c.mu.Lock()
	l := c.loop
	c.mu.Unlock()
	if l != nil {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// written tells the loop a local write happened.
func (c *Client) written() {
	c.mu.Lock()
	l := c.loop
	c.mu.Unlock()
	if l == nil {
		return
	}
	go func() {
		t := time.NewTimer(c.opts.SyncDelay)
		defer t.Stop()
		select {
		case <-t.C:
			c.SyncNow()
		case <-l.done:
		}
	}()
}

// retryWait is how long the background loop waits after its failures-th
// failure in a row: exponential backoff from one second, with jitter (a
// random half of it, from rnd, so that the tablets of a team that lost the
// network together do not retry together), and never longer than the
// interval.
func retryWait(failures int, interval time.Duration, rnd func(int64) int64) time.Duration {
	backoff := time.Second << min(failures, 16)
	return min(backoff/2+time.Duration(rnd(int64(backoff/2)+1)), interval)
}

func (c *Client) run(ctx context.Context, l *loop) {
	defer close(l.done)
	wait := c.opts.SyncInterval
	failures := 0
	for {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-l.kick:
			timer.Stop()
		case <-timer.C:
		}
		err := c.Sync(ctx)
		switch {
		case err == nil:
			failures, wait = 0, c.opts.SyncInterval
		case errors.Is(err, ErrRevoked), errors.Is(err, ErrRetired), errors.Is(err, ErrUnknownDevice), errors.Is(err, ErrNotEnrolled), errors.Is(err, ErrUpdateRequired):
			c.opts.Logger.Warn("background sync stopped", "err", err)
			return
		case ctx.Err() != nil:
			return
		default:
			failures++
			wait = retryWait(failures, c.opts.SyncInterval, rand.Int64N)
			c.opts.Logger.Info("background sync failed", "err", err, "retry_in", wait)
		}
	}
}

// pullAll pulls pages until the device is caught up. A goroutine fetches
// and decodes pages one after another while the device applies the ones
// already fetched, so that the server, the network and the device's
// writes overlap; at most two pages wait. A page the device does not apply
// (it does not continue from the device's cursor), and a cursor the server
// refuses, start the fetching over from the device's cursor (for a refused
// cursor, from the start, at most three times).
func (c *Client) pullAll(ctx context.Context, dev *replica.Device) error {
	// A page goes through three goroutines: one fetches it (the server's
	// work), one reads and decodes it into rows, and the caller's applies
	// them to the replica, so that the three overlap. The server sends a
	// page's cursor in a header too, so the fetcher asks for the next page
	// as soon as an answer begins, while the page is still being read.
	// Each page asks with the mutation numbers the device has had answered
	// (PullRequest.Acked): the server leaves out what the device's own
	// pushes made, which it holds, and a server put back to an older copy
	// without a new epoch learns so that it lost them
	// (wire.CodeServerRestored).
	fetch := func(ctx context.Context, cursor string, limit int, acked int64, out chan<- fetched) {
		defer close(out)
		for {
			f := fetched{}
			f.answer, f.err = c.authedOpen(ctx, "GET", wire.PullPathAcked(cursor, limit, acked), nil)
			if f.err == nil {
				f.epoch = f.answer.Header.Get(wire.HeaderEpoch)
				f.next = f.answer.Header.Get(wire.HeaderCursor)
				f.more = f.answer.Header.Get(wire.HeaderHasMore) == "true"
				if f.next == "" { // a server that does not send them: read the page here
					f.resp, _, f.err = readPage(f.answer, nil)
					f.answer = nil
					if f.err == nil {
						f.next, f.more = f.resp.Cursor, f.resp.HasMore
					}
				}
			}
			select {
			case out <- f:
			case <-ctx.Done():
				f.close()
				return
			}
			if f.err != nil || !f.more {
				return
			}
			cursor = f.next
		}
	}
	// The bodies of pages applied come back to be read into again: a first
	// sync reads hundreds of pages of a megabyte each.
	bodies := make(chan []byte, 3)
	decode := func(ctx context.Context, in <-chan fetched, out chan<- fetched) {
		defer close(out)
		for f := range in {
			if f.err == nil && f.answer != nil {
				var body []byte
				select {
				case body = <-bodies:
				default:
				}
				f.resp, f.body, f.err = readPage(f.answer, body)
				f.answer = nil
				if f.err == nil && (f.resp.Cursor != f.next || f.resp.HasMore != f.more) {
					f.err = errors.New("a page's cursor differs from the one in its header")
				}
			}
			if f.err == nil {
				f.page, f.err = replica.DecodePage(f.resp)
			}
			select {
			case out <- f:
			case <-ctx.Done():
				for f := range in { // let the fetcher end
					f.close()
				}
				return
			}
		}
	}
	epoch, err := c.knownEpoch(ctx, dev)
	if err != nil {
		return err
	}
	var start, received int64 = -1, 0
	for restarts, again := 0, 0; ; {
		req, err := dev.PullRequest(ctx, c.opts.PullPage)
		if err != nil {
			return err
		}
		if start < 0 {
			from, _ := wire.ParseCursor(req.Cursor)
			start = from.Seq
		}
		fctx, cancel := context.WithCancel(ctx)
		fetchedPages, pages := make(chan fetched, 1), make(chan fetched, 1)
		go fetch(fctx, req.Cursor, req.Limit, req.Acked, fetchedPages)
		go decode(fctx, fetchedPages, pages)
		caughtUp, anew, err := c.applyPages(ctx, dev, pages, start, &received, bodies, epoch)
		cancel()
		for range pages { // let the fetcher and the decoder end
		}
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.Code == wire.CodeCursorInvalid && restarts < 3:
			restarts++
			if err := dev.ResetCursor(ctx); err != nil {
				return err
			}
			start = -1
		case err != nil:
			return err
		case caughtUp:
			return nil
		case !anew:
			return fmt.Errorf("pull: the pages ended before the device caught up")
		case again >= 10:
			return fmt.Errorf("pull: ten times a page did not continue from the device's cursor")
		default:
			again++
		}
	}
}

// fetched is a pull page as the fetching goroutine hands it on: an answer
// whose body is still to be read, with the cursor and has_more its headers
// give; then read (resp) and decoded (page).
type fetched struct {
	answer *http.Response
	epoch  string // the server's epoch, from the answer's header
	next   string
	more   bool
	resp   *wire.PullResponse
	body   []byte // what resp was read from
	page   *replica.Page
	err    error
}

// close closes the body of an answer not read.
func (f *fetched) close() {
	if f.answer != nil {
		f.answer.Body.Close()
	}
}

// applyPages applies fetched pages in order until one says no more follow
// (caught up), one does not continue from the device's cursor (again: fetch
// anew), one failed, or one is of another epoch of the server than the
// replica's (errEpochChanged: it is not applied).
func (c *Client) applyPages(ctx context.Context, dev *replica.Device, pages <-chan fetched, start int64, received *int64, bodies chan<- []byte, epoch string) (caughtUp, again bool, err error) {
	for f := range pages {
		if f.err != nil {
			return false, false, fmt.Errorf("pull: %w", f.err)
		}
		if f.epoch != "" && epoch != "" && f.epoch != epoch {
			return false, false, errEpochChanged
		}
		resp := f.resp
		c.noteServerClock(ctx, resp.Clock)
		applied, err := dev.AcceptPage(ctx, f.page)
		if err != nil {
			return false, false, err
		}
		*received += int64(len(resp.Changes))
		resp.Changes = nil // they alias the body, which is read into again
		select {
		case bodies <- f.body:
		default:
		}
		if !applied {
			return false, true, nil
		}
		at, _ := wire.ParseCursor(resp.Cursor)
		c.progress(Progress{Phase: "pull", Done: at.Seq - start, Total: max(resp.Head-start, at.Seq-start), Received: *received})
		if !resp.HasMore {
			return true, false, nil
		}
	}
	return false, true, nil
}
