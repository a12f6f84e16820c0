package brygga

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// Errors of a device's lifecycle and of a restored server.
var (
	// ErrRetired means the device was retired (taken out of service):
	// everything it held was sent, and its replica wiped.
	ErrRetired = errors.New("the device was retired: everything it held was sent and its replica wiped")
	// ErrSealed is what recording returns on a retired device that is
	// still sending what it holds: it records nothing more.
	ErrSealed = replica.ErrSealed
	// ErrUnknownDevice means the server does not know the device: its
	// database was restored from a copy older than the enrolment. The
	// replica is kept; Reenroll with a new code sends its records again.
	ErrUnknownDevice = errors.New("the server does not know this device (its database was restored?): enrol it again with Reenroll and a new code; its records are kept")
)

// Meta keys of a device's lifecycle.
const (
	metaEpoch       = "epoch"        // the server epoch the replica is in step with
	metaHealPending = "heal_pending" // records to send again before the next pull
	metaHealRefused = "heal_refused" // records sent again that the server refused
)

// healBatch is how many records a heal request carries.
const healBatch = 500

// errEpochChanged stops a pull whose page came from another epoch of the
// server than the replica's: the server was restored and is healed first.
var errEpochChanged = errors.New("the server's database was restored")

// isRestored reports whether err is the server's answer that it holds
// less than the device has seen (wire.CodeServerRestored): its database
// was put back to an older copy without a new epoch.
func isRestored(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == wire.CodeServerRestored
}

// healIfRestored asks the server, with a pull of one change, whether it
// holds what the device has seen, and heals it if not: a retired device,
// which pulls nothing, asks before it is wiped. An answer device_retired
// is a yes.
func (c *Client) healIfRestored(ctx context.Context, dev *replica.Device) error {
	req, err := dev.PullRequest(ctx, 1)
	if err != nil {
		return err
	}
	resp, err := c.authedOpen(ctx, "GET", wire.PullPathAcked(req.Cursor, req.Limit, req.Acked), nil)
	var ae *APIError
	switch {
	case err == nil:
		resp.Body.Close()
		return nil
	case isRestored(err):
		return c.heal(ctx, dev)
	case errors.As(err, &ae) && (ae.Code == wire.CodeDeviceRetired || ae.Code == wire.CodeCursorInvalid):
		return nil
	}
	return err
}

// noteEpoch keeps the epoch of a server's answer.
func (c *Client) noteEpoch(epoch string) {
	if epoch == "" {
		return
	}
	c.mu.Lock()
	c.seenEpoch = epoch
	c.mu.Unlock()
}

// knownEpoch returns the epoch the replica is in step with. A replica that
// has none yet takes its cursor's (the epoch it last pulled from) or, with
// no cursor, the one the server answered with: nothing to heal then.
func (c *Client) knownEpoch(ctx context.Context, dev *replica.Device) (string, error) {
	known, err := dev.Meta(ctx, metaEpoch)
	if err != nil || known != "" {
		return known, err
	}
	req, err := dev.PullRequest(ctx, 1)
	if err != nil {
		return "", err
	}
	if cur, err := wire.ParseCursor(req.Cursor); req.Cursor != "" && err == nil && cur.Store != uuid.Nil {
		known = cur.Store.String()
	} else {
		c.mu.Lock()
		known = c.seenEpoch
		c.mu.Unlock()
	}
	if known == "" {
		return "", nil
	}
	return known, dev.SetMeta(ctx, metaEpoch, known)
}

// needsHeal reports whether the replica must send its records again
// before it pulls: the server answered with another epoch than the
// replica's, or an enrolment again left it to do.
func (c *Client) needsHeal(ctx context.Context, dev *replica.Device) (bool, error) {
	if p, err := dev.Meta(ctx, metaHealPending); err != nil || p != "" {
		return p != "", err
	}
	known, err := c.knownEpoch(ctx, dev)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	seen := c.seenEpoch
	c.mu.Unlock()
	return known != "" && seen != "" && seen != known, nil
}

// healIfNeeded heals the server if needsHeal says so.
func (c *Client) healIfNeeded(ctx context.Context, dev *replica.Device) error {
	need, err := c.needsHeal(ctx, dev)
	if err != nil || !need {
		return err
	}
	return c.heal(ctx, dev)
}

// heal sends every record the replica holds to the server, each whole with
// its versions, so that a server restored from an older copy (or the
// server of an enrolment again) gets back what it lost; the server joins
// them with what it has, so what it has already changes nothing. Then the
// replica takes the server's epoch and pulls again from the start. The
// mutation numbers acknowledged so far go with it: the server expects the
// next one after them.
func (c *Client) heal(ctx context.Context, dev *replica.Device) error {
	known, err := dev.Meta(ctx, metaEpoch)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		acked, err := dev.AckedThrough(ctx)
		if err != nil {
			return err
		}
		var cursor replica.HealCursor
		epochs := map[string]bool{}
		refused := 0
		for {
			recs, next, err := dev.HealRecords(ctx, cursor, healBatch)
			if err != nil {
				return err
			}
			req := &wire.HealRequest{Versions: wire.Current(), Epoch: known, AckedThrough: acked, Records: recs}
			var resp wire.HealResponse
			if err := c.authed(ctx, "POST", "/v1/sync/heal", req, &resp); err != nil {
				return fmt.Errorf("heal: %w", err)
			}
			epochs[resp.Epoch] = true
			for _, r := range resp.Results {
				if r.Status == wire.Refused {
					refused++
					c.opts.Logger.Warn("a record sent again was refused", "id", r.ID, "code", r.Error.Code)
				}
			}
			if len(recs) < healBatch {
				if len(epochs) == 1 {
					if refused > 0 {
						prev, _ := dev.Meta(ctx, metaHealRefused)
						n, _ := strconv.Atoi(prev)
						dev.SetMeta(ctx, metaHealRefused, strconv.Itoa(n+refused)) // a figure for Status only
					}
					return c.healed(ctx, dev, resp.Epoch)
				}
				break // restored again while healing: once more
			}
			cursor = next
		}
		if attempt >= 2 {
			return fmt.Errorf("heal: the server's epoch changed while it was healed, three times")
		}
	}
}

// healed records that the replica is in step with epoch: it pulls from
// the start (the restored server's change sequence is not the one its
// cursor was of).
func (c *Client) healed(ctx context.Context, dev *replica.Device, epoch string) error {
	if err := dev.ResetCursor(ctx); err != nil {
		return err
	}
	if err := dev.SetMeta(ctx, metaEpoch, epoch); err != nil {
		return err
	}
	return dev.SetMeta(ctx, metaHealPending, "")
}

// Reenroll enrols the device again, with a new one-time code of its unit,
// keeping its replica: for a device the server no longer knows
// (ErrUnknownDevice, after a restore of the server from a copy older than
// the enrolment) or whose session ended. The device gets a new id; every
// record it holds, its unsent writes included, is sent to the server
// before it pulls, at the next Sync. A Reenroll that failed (an answer
// lost, a context cancelled, the app stopped) leaves the replica with its
// records and without an id: Reenroll again, with the same code or a new
// one, on this Client or one opened anew, or Enroll with a code of its
// unit, takes it up. A code of another unit fails with
// replica.ErrIdentity and leaves the replica so too. ErrNotEnrolled if
// there is no replica.
func (c *Client) Reenroll(ctx context.Context, code string) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	dev, err := c.device()
	if errors.Is(err, ErrNotEnrolled) {
		// A replica left without an id by a Reenroll that did not end
		// (the heal it owes is marked in it) is enrolled again.
		base, merr := replica.MetaAt(ctx, c.path, metaServer)
		if pending, _ := replica.MetaAt(ctx, c.path, metaHealPending); merr != nil || base == "" || pending == "" {
			return ErrNotEnrolled
		}
		return c.enroll(ctx, base, code)
	}
	if err != nil {
		return err
	}
	base, err := dev.Meta(ctx, metaServer)
	if err != nil {
		return err
	}
	if err := dev.SetMeta(ctx, metaHealPending, "1"); err != nil {
		return err
	}
	if err := dev.SetMeta(ctx, metaEpoch, ""); err != nil {
		return err
	}
	if err := dev.Unbind(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.dev = nil
	c.access = ""
	c.mu.Unlock()
	if err := dev.Close(); err != nil {
		return err
	}
	return c.enroll(ctx, base, code)
}

// retire answers a retirement: the replica records nothing more, sends
// what it holds, and is wiped once its outbox is empty. A mutation the
// server rejects leaves the outbox too, so the outbox empties whatever the
// server says of its records.
func (c *Client) retire(ctx context.Context, dev *replica.Device) error {
	for range 100 {
		pending, err := dev.Seal(ctx)
		if err != nil {
			return err
		}
		if pending == 0 {
			// A server restored meanwhile gets back what the replica
			// holds before it goes.
			if err := c.healIfNeeded(ctx, dev); err != nil {
				return fmt.Errorf("the device was retired; sending its records again: %w", err)
			}
			if err := c.healIfRestored(ctx, dev); err != nil {
				return fmt.Errorf("the device was retired; asking whether the server was restored: %w", err)
			}
			if err := c.wipe(); err != nil {
				return fmt.Errorf("%w (wiping failed: %v)", ErrRetired, err)
			}
			return ErrRetired
		}
		if err := c.pushAll(ctx, dev); err != nil {
			return fmt.Errorf("the device was retired; %d records still to send: %w", pending, err)
		}
	}
	return fmt.Errorf("the device was retired; its outbox does not empty")
}
